"""Always-valid health checks for rollout steps (decisions 031 and 032).

The controller looks at a step's growing window again and again; a fixed-sample confidence
interval checked at every look would roll back a good candidate far more often than its
nominal alpha. Both checks therefore use confidence *sequences*, valid simultaneously at every
look (Ville's inequality):

- success rate: a beta-binomial mixture martingale. For every hypothetical rate q the mixture
  likelihood ratio M_n(q) = ∫ L(p)/L(q) dBeta(p) is a martingale with mean 1 when q is the
  true rate, so {q : M_n(q) < 1/alpha} covers the true rate at every n with probability
  ≥ 1 - alpha. Exact for Bernoulli outcomes, no normal approximation near 100 %.
- p95 latency ratio: the asymptotic normal-mixture boundary (Robbins; Howard et al. 2021;
  Waudby-Smith et al. 2021 for the asymptotic version) on log(p95_candidate / p95_baseline),
  whose standard error comes from the sample quantile's asymptotic variance
  p(1-p) / (n f(q)^2) with the density at the p95 taken from a log-normal tail fitted through
  the p50 and p95 (a conservative spread when there is no p50), times a safety factor.

Each check says *unhealthy* only when its bound at the small rollback alpha excludes the
healthy side, and *healthy* when its bound at the advance alpha excludes the unhealthy side.
The tests are truncated (decision 098): each has a planned amount of information, the point
at which a regression as large again as the limit allows would have been shown unhealthy with
`PLANNED_POWER`; once a step has it, "not shown to be worse" is healthy too. So every check
concludes after a bounded number of samples, and a candidate at the threshold is not rolled
back for want of proof. *Inconclusive* means neither has happened yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

from pydantic import BaseModel, ConfigDict

from policyhub.domain.rollout import PipelineConfig, Verdict

ROLLBACK_ALPHA_PER_ROLLOUT = 0.01
"""Budget for rolling back a healthy candidate on statistical evidence, over a whole rollout."""
ADVANCE_ALPHA = 0.05
"""Chance per check of calling a step healthy although its metric is on the wrong side; a
wrong advance is caught again at the next, larger step, at 100 % and in the watch."""

SUCCESS_PRIOR_STRENGTH = 200.0
"""Pseudo-observations of the beta mixing distributions; sets where the test is sharpest."""
SUCCESS_PRIOR_ODDS_SHIFT = math.log(2.0)
"""The mixtures are centred at odds of success halved (for `unhealthy`) or doubled (for
`healthy`) relative to the threshold."""

LATENCY_QUANTILE = 0.95
SPACING_QUANTILES = 0.02
"""Half the gap between the quantiles (p93, p97) whose spacing estimates the density at p95."""
LATENCY_SAFETY = 1.25
"""Widens the p95 standard error: tails heavier than log-normal (e.g. Pareto) have a lower
density at the p95 than the fitted log-normal says."""
DEFAULT_LOG_SPREAD = 1.0
"""Log-normal sigma assumed when the p50 is missing; wider than typical service latency."""
MIN_LOG_SPREAD = 0.1
MAX_LOG_SPREAD = 2.0
LATENCY_MIXTURE_RATIO = 10.0
"""Ratio of accumulated information to the mixture's precision at the planned information;
the boundary is tightest around ratios of 5-30."""
PLANNED_POWER = 0.95
"""Chance that a regression as large again as the limit allows (success: half the threshold's
odds; latency: a p95 ratio of (1 + max_increase)^2) is rolled back by the time a step has its
planned information."""
MAX_PLANNED_OUTCOMES = 1_000_000

_STANDARD_NORMAL = NormalDist()
_Z_P95 = _STANDARD_NORMAL.inv_cdf(LATENCY_QUANTILE)
_DENSITY_AT_P95 = _STANDARD_NORMAL.pdf(_Z_P95)
_Z_POWER = _STANDARD_NORMAL.inv_cdf(PLANNED_POWER)
_NEWTON_STEPS = 60


class CheckResult(BaseModel):
    """One metric's judgement with the numbers behind it (kept as audit evidence)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    metric: str
    verdict: Verdict
    estimate: float | None
    lower: float | None
    upper: float | None
    threshold: float
    samples: int
    reason: str
    information: float | None = None
    """Share of the check's planned information the evidence carries (1.0 = planned; may be
    more); None when there is no evidence at all."""


def rollback_alpha(config: PipelineConfig) -> float:
    """Per-check alpha for `unhealthy`: the rollout budget split (Bonferroni) over the two
    statistical metrics and every stage that runs them (each canary step and the watch)."""
    return ROLLBACK_ALPHA_PER_ROLLOUT / (2 * (len(config.canary_steps) + 1))


# ---- success rate ---------------------------------------------------------------------------


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass(frozen=True)
class _BetaMixture:
    a: float
    b: float

    @classmethod
    def centred(cls, mean: float) -> _BetaMixture:
        return cls(SUCCESS_PRIOR_STRENGTH * mean, SUCCESS_PRIOR_STRENGTH * (1.0 - mean))

    def log_ratio_term(self, successes: int, failures: int) -> float:
        """log ∫ p^s (1-p)^f dBeta(p): the part of log M_n(q) that does not depend on q."""
        return _log_beta(self.a + successes, self.b + failures) - _log_beta(self.a, self.b)


def _rate_bound(
    successes: int, failures: int, mixture: _BetaMixture, alpha: float, *, upper: bool
) -> float:
    """The lower or upper end of the confidence sequence {q : log M_n(q) < log(1/alpha)}.

    g(q) = log M_n(q) - log(1/alpha) = -s log q - f log(1 - q) - c is convex with its minimum
    (< 0) at the observed rate. From a point outside the interval (g >= 0) Newton's method on
    a convex function walks monotonically to the root without crossing it, so the returned
    end is never inside the interval: the bound errs on the wide side."""
    if (failures if upper else successes) == 0:
        return 1.0 if upper else 0.0
    s, f = successes, failures
    c = math.log(1.0 / alpha) - mixture.log_ratio_term(s, f)
    edge = 1.0 if upper else 0.0
    q = s / (s + f)
    g = -1.0
    while g < 0.0:
        q = (q + edge) / 2.0
        if not 0.0 < q < 1.0:
            return edge
        g = -s * math.log(q) - f * math.log1p(-q) - c
    for _ in range(_NEWTON_STEPS):
        slope = f / (1.0 - q) - s / q
        step = g / slope
        q -= step
        g = -s * math.log(q) - f * math.log1p(-q) - c
        if abs(step) < 1e-12 or g < 1e-12:
            break
    return q


def _odds_shifted(threshold: float, shift: float) -> float:
    return _expit(math.log(threshold / (1.0 - threshold)) + shift)


def _upper_rate(successes: int, failures: int, threshold: float, alpha: float) -> float:
    mixture = _BetaMixture.centred(_odds_shifted(threshold, -SUCCESS_PRIOR_ODDS_SHIFT))
    return _rate_bound(successes, failures, mixture, alpha, upper=True)


def _lower_rate(successes: int, failures: int, threshold: float, alpha: float) -> float:
    mixture = _BetaMixture.centred(_odds_shifted(threshold, SUCCESS_PRIOR_ODDS_SHIFT))
    return _rate_bound(successes, failures, mixture, alpha, upper=False)


def success_alternative(threshold: float) -> float:
    """The regression the success test is planned to catch: half the threshold's odds of
    success (95 % -> 90.5 %, 60 % -> 42.9 %)."""
    return _odds_shifted(threshold, -SUCCESS_PRIOR_ODDS_SHIFT)


def _binomial_cdf(k: int, n: int, p: float) -> float:
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    return min(1.0, sum(
        math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
        for i in range(k + 1)))


def _most_successes_still_unhealthy(n: int, threshold: float, alpha: float) -> int:
    """The largest success count out of n outcomes whose upper bound is below the threshold
    (-1 when there is none); the upper bound grows with the successes."""
    low, high = -1, n
    while low < high:
        mid = (low + high + 1) // 2
        if _upper_rate(mid, n - mid, threshold, alpha) < threshold:
            low = mid
        else:
            high = mid - 1
    return low


def _power_at(n: int, threshold: float, alpha: float) -> float:
    cutoff = _most_successes_still_unhealthy(n, threshold, alpha)
    return _binomial_cdf(cutoff, n, success_alternative(threshold))


@lru_cache(maxsize=256)
def planned_outcomes(threshold: float, rollback_alpha: float) -> int:
    """Outcomes after which a candidate at `success_alternative(threshold)` would have been
    found below the threshold with probability `PLANNED_POWER`, looking only at that point
    (earlier looks only add power). Found by doubling, then bisection on the exact power."""
    high = 16
    while _power_at(high, threshold, rollback_alpha) < PLANNED_POWER:
        high *= 2
        if high > MAX_PLANNED_OUTCOMES:
            return MAX_PLANNED_OUTCOMES
    low = high // 2
    while high - low > max(1, low // 200):
        mid = (low + high) // 2
        if _power_at(mid, threshold, rollback_alpha) >= PLANNED_POWER:
            high = mid
        else:
            low = mid
    return high


def success_rate_check(
    successes: int,
    outcomes: int,
    threshold: float,
    *,
    rollback_alpha: float,
    advance_alpha: float = ADVANCE_ALPHA,
) -> CheckResult:
    """Unhealthy when the rate is below `threshold` with confidence 1 - rollback_alpha;
    healthy when it is at or above it with confidence 1 - advance_alpha, or when the planned
    number of outcomes has passed without it being shown below."""
    planned = planned_outcomes(threshold, rollback_alpha)
    if outcomes <= 0:
        return CheckResult(
            metric="success_rate",
            verdict=Verdict.INCONCLUSIVE,
            estimate=None,
            lower=None,
            upper=None,
            threshold=threshold,
            samples=0,
            reason="no decisions with a known outcome (feedback or error) yet",
            information=0.0,
        )
    failures = outcomes - successes
    upper = _upper_rate(successes, failures, threshold, rollback_alpha)
    lower = _lower_rate(successes, failures, threshold, advance_alpha)
    rate = successes / outcomes
    information = outcomes / planned
    shown = (
        f"success rate {rate:.3f} over {outcomes} outcomes "
        f"(confidence bounds {lower:.3f}..{upper:.3f}, threshold {threshold:g})"
    )
    if upper < threshold:
        verdict, why = Verdict.UNHEALTHY, f"{shown}: confidently below the threshold"
    elif lower >= threshold:
        verdict, why = Verdict.HEALTHY, f"{shown}: confidently at or above the threshold"
    elif outcomes >= planned:
        verdict, why = Verdict.HEALTHY, (
            f"{shown}: not shown below the threshold after the planned {planned} outcomes "
            f"(a rate of {success_alternative(threshold):.3f} would have been caught "
            f"{PLANNED_POWER:.0%} of the time)")
    else:
        verdict, why = Verdict.INCONCLUSIVE, (
            f"{shown}: not enough evidence either way yet ({outcomes} of the {planned} "
            "outcomes planned)")
    return CheckResult(
        metric="success_rate",
        verdict=verdict,
        estimate=rate,
        lower=lower,
        upper=upper,
        threshold=threshold,
        samples=outcomes,
        reason=why,
        information=information,
    )


# ---- p95 latency ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyEvidence:
    p95_ms: float
    p50_ms: float | None
    samples: int
    p93_ms: float | None = None
    p97_ms: float | None = None
    """With both, the density at the p95 is also read off the data (decision 098)."""

    def log_spread(self) -> float:
        """Log-normal sigma through the p50 and p95, clamped; a wide default without p50."""
        if self.p50_ms is None or not 0.0 < self.p50_ms <= self.p95_ms:
            return DEFAULT_LOG_SPREAD
        sigma = math.log(self.p95_ms / self.p50_ms) / _Z_P95
        return min(max(sigma, MIN_LOG_SPREAD), MAX_LOG_SPREAD)

    def log_p95_standard_error(self) -> float:
        """Asymptotic s.e. of log(sample p95): sqrt(p(1-p)/n) / (q f(q)).

        q f(q) is taken from a log-normal through the p50 and p95 (φ(z_p) / sigma) and, when
        the p93 and p97 are known, also from the data: the quantile spacing estimate
        (Siddiqui; Bloch and Gastwirth) q f(q) ~ 0.04 / log(p97 / p93). The smaller density
        (the larger error) wins: a latency distribution with a cliff near its p95 (a fast core
        and a slow tail, as when a few percent of requests wait for something) has a far
        noisier p95 than a log-normal fit claims, and the fit alone would roll back equal
        candidates."""
        p = LATENCY_QUANTILE
        fitted = self.log_spread() / _DENSITY_AT_P95
        spacing = 0.0
        if (self.p93_ms is not None and self.p97_ms is not None
                and 0.0 < self.p93_ms <= self.p95_ms <= self.p97_ms):
            spacing = math.log(self.p97_ms / self.p93_ms) / (2 * SPACING_QUANTILES)
        return LATENCY_SAFETY * max(fitted, spacing) * math.sqrt(p * (1.0 - p) / self.samples)


def mixture_boundary(information_ratio: float, alpha: float) -> float:
    """One-sided always-valid z boundary of the normal mixture at level alpha:
    sqrt((1 + 1/r) (log(1 + r) + 2 log(1 / (2 alpha)))), r = information / mixture precision."""
    r = information_ratio
    return math.sqrt((1.0 + 1.0 / r) * (math.log1p(r) + 2.0 * math.log(1.0 / (2.0 * alpha))))


def planned_latency_standard_error(max_increase: float, rollback_alpha: float) -> float:
    """The s.e. of log(p95_candidate / p95_baseline) at which a ratio of (1 + max_increase)^2
    is found above the limit with probability `PLANNED_POWER` at that look, with the mixture
    tuned to this information (r = LATENCY_MIXTURE_RATIO)."""
    gap = math.log1p(max_increase)
    return gap / (mixture_boundary(LATENCY_MIXTURE_RATIO, rollback_alpha) + _Z_POWER)


def latency_ratio_check(
    candidate: LatencyEvidence,
    baseline: LatencyEvidence,
    max_increase: float,
    *,
    rollback_alpha: float,
    advance_alpha: float = ADVANCE_ALPHA,
    baseline_is_reference: bool = False,
) -> CheckResult:
    """Unhealthy when p95_candidate / p95_baseline > 1 + max_increase with confidence
    1 - rollback_alpha; healthy when it is at most that with confidence 1 - advance_alpha, or
    once the planned information is there and it was not shown above.

    `baseline_is_reference`: the baseline numbers are fixed (measured in earlier steps) and
    will not grow; when they carry less than the planned information the target becomes what
    the comparison can reach: a candidate measured as precisely as the reference."""
    limit = 1.0 + max_increase
    samples = candidate.samples
    if candidate.samples <= 0 or baseline.samples <= 0:
        return CheckResult(
            metric="latency_p95_ratio",
            verdict=Verdict.INCONCLUSIVE,
            estimate=None,
            lower=None,
            upper=None,
            threshold=limit,
            samples=samples,
            reason="no latency samples",
        )
    log_ratio = math.log(candidate.p95_ms / baseline.p95_ms)
    baseline_se = baseline.log_p95_standard_error()
    se = math.hypot(candidate.log_p95_standard_error(), baseline_se)
    planned_se = planned_latency_standard_error(max_increase, rollback_alpha)
    target_se = planned_se
    if baseline_is_reference:
        target_se = max(planned_se, math.sqrt(2.0) * baseline_se)
    information = (target_se / se) ** 2
    r = LATENCY_MIXTURE_RATIO * (planned_se / se) ** 2
    lower = math.exp(log_ratio - mixture_boundary(r, rollback_alpha) * se)
    upper = math.exp(log_ratio + mixture_boundary(r, advance_alpha) * se)
    ratio = math.exp(log_ratio)
    shown = (
        f"p95 latency {candidate.p95_ms:.1f} ms vs baseline {baseline.p95_ms:.1f} ms "
        f"(x{ratio:.2f}, confidence bounds x{lower:.2f}..x{upper:.2f}, "
        f"limit x{limit:.2f})"
    )
    if lower > limit:
        verdict, why = Verdict.UNHEALTHY, f"{shown}: confidently above the limit"
    elif upper <= limit:
        verdict, why = Verdict.HEALTHY, f"{shown}: confidently within the limit"
    elif information >= 1.0:
        caught = (
            f"a p95 x{limit * limit:.2f} would have been caught {PLANNED_POWER:.0%} of the time"
            if target_se == planned_se
            else f"the baseline reference has only {baseline.samples} samples, so this is "
            "as much information as the comparison can reach"
        )
        verdict, why = Verdict.HEALTHY, (
            f"{shown}: not shown above the limit with the planned information ({caught})")
    else:
        verdict, why = Verdict.INCONCLUSIVE, (
            f"{shown}: not enough evidence either way yet ({information:.0%} of the planned "
            "information)")
    return CheckResult(
        metric="latency_p95_ratio",
        verdict=verdict,
        estimate=ratio,
        lower=lower,
        upper=upper,
        threshold=limit,
        samples=samples,
        reason=why,
        information=information,
    )
