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
healthy side, *healthy* only when its bound at the advance alpha excludes the unhealthy side,
and *inconclusive* otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
LATENCY_SAFETY = 1.25
"""Widens the p95 standard error: tails heavier than log-normal (e.g. Pareto) have a lower
density at the p95 than the fitted log-normal says."""
DEFAULT_LOG_SPREAD = 1.0
"""Log-normal sigma assumed when the p50 is missing; wider than typical service latency."""
MIN_LOG_SPREAD = 0.1
MAX_LOG_SPREAD = 2.0
LATENCY_MIXTURE_RATIO = 10.0
"""Ratio of accumulated information to the mixture's precision when each variant has
`min_samples_per_step` samples; the boundary is tightest around ratios of 5-30."""

_STANDARD_NORMAL = NormalDist()
_Z_P95 = _STANDARD_NORMAL.inv_cdf(LATENCY_QUANTILE)
_DENSITY_AT_P95 = _STANDARD_NORMAL.pdf(_Z_P95)
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


def success_rate_check(
    successes: int,
    outcomes: int,
    threshold: float,
    *,
    rollback_alpha: float,
    advance_alpha: float = ADVANCE_ALPHA,
) -> CheckResult:
    """Unhealthy when the rate is below `threshold` with confidence 1 - rollback_alpha,
    healthy when it is at or above it with confidence 1 - advance_alpha."""
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
        )
    failures = outcomes - successes
    odds = math.log(threshold / (1.0 - threshold))
    upper = _rate_bound(
        successes,
        failures,
        _BetaMixture.centred(_expit(odds - SUCCESS_PRIOR_ODDS_SHIFT)),
        rollback_alpha,
        upper=True,
    )
    lower = _rate_bound(
        successes,
        failures,
        _BetaMixture.centred(_expit(odds + SUCCESS_PRIOR_ODDS_SHIFT)),
        advance_alpha,
        upper=False,
    )
    rate = successes / outcomes
    shown = (
        f"success rate {rate:.3f} over {outcomes} outcomes "
        f"(confidence bounds {lower:.3f}..{upper:.3f}, threshold {threshold:g})"
    )
    if upper < threshold:
        verdict, why = Verdict.UNHEALTHY, f"{shown}: confidently below the threshold"
    elif lower >= threshold:
        verdict, why = Verdict.HEALTHY, f"{shown}: confidently at or above the threshold"
    else:
        verdict, why = Verdict.INCONCLUSIVE, f"{shown}: not enough evidence either way"
    return CheckResult(
        metric="success_rate",
        verdict=verdict,
        estimate=rate,
        lower=lower,
        upper=upper,
        threshold=threshold,
        samples=outcomes,
        reason=why,
    )


# ---- p95 latency ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyEvidence:
    p95_ms: float
    p50_ms: float | None
    samples: int

    def log_spread(self) -> float:
        """Log-normal sigma through the p50 and p95, clamped; a wide default without p50."""
        if self.p50_ms is None or not 0.0 < self.p50_ms <= self.p95_ms:
            return DEFAULT_LOG_SPREAD
        sigma = math.log(self.p95_ms / self.p50_ms) / _Z_P95
        return min(max(sigma, MIN_LOG_SPREAD), MAX_LOG_SPREAD)

    def log_p95_standard_error(self) -> float:
        """Asymptotic s.e. of log(sample p95): sqrt(p(1-p)/n) / (q f(q)), with q f(q) =
        φ(z_p) / sigma for a log-normal."""
        p = LATENCY_QUANTILE
        return (
            LATENCY_SAFETY
            * self.log_spread()
            * math.sqrt(p * (1.0 - p) / self.samples)
            / _DENSITY_AT_P95
        )


def mixture_boundary(information_ratio: float, alpha: float) -> float:
    """One-sided always-valid z boundary of the normal mixture at level alpha:
    sqrt((1 + 1/r) (log(1 + r) + 2 log(1 / (2 alpha)))), r = information / mixture precision."""
    r = information_ratio
    return math.sqrt((1.0 + 1.0 / r) * (math.log1p(r) + 2.0 * math.log(1.0 / (2.0 * alpha))))


def latency_ratio_check(
    candidate: LatencyEvidence,
    baseline: LatencyEvidence,
    max_increase: float,
    *,
    planned_samples: int,
    rollback_alpha: float,
    advance_alpha: float = ADVANCE_ALPHA,
) -> CheckResult:
    """Unhealthy when p95_candidate / p95_baseline > 1 + max_increase with confidence
    1 - rollback_alpha; healthy when it is at most that with confidence 1 - advance_alpha."""
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
    se = math.hypot(candidate.log_p95_standard_error(), baseline.log_p95_standard_error())
    ratio_info = (2.0 / planned_samples) / (1.0 / candidate.samples + 1.0 / baseline.samples)
    r = LATENCY_MIXTURE_RATIO * ratio_info
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
    else:
        verdict, why = Verdict.INCONCLUSIVE, f"{shown}: not enough evidence either way"
    return CheckResult(
        metric="latency_p95_ratio",
        verdict=verdict,
        estimate=ratio,
        lower=lower,
        upper=upper,
        threshold=limit,
        samples=samples,
        reason=why,
    )
