"""Baseline vs candidate on the same held-out decisions, shaped like API.md's compare response."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from policyhub.ml.dataset import LoggedDataset
from policyhub.ml.estimators import (
    DEFAULT_BOOTSTRAP,
    METHOD_NAMES,
    FloatArray,
    Interval,
    Method,
    RatioBootstrap,
    contributions,
    effective_sample_size,
    importance_weights,
    percentile_interval,
)
from policyhub.ml.shadow import ShadowAgreement

Recommendation = Literal["promote", "keep_current", "collect_more_data"]
DEFAULT_MIN_SAMPLES = 500
DEFAULT_WINDOW_HOURS = 168
"""Compare reads this many hours of logs before now unless asked otherwise."""
DEFAULT_MIN_EFFECTIVE_SAMPLES = 100.0
REWARD_RANGE = (0.0, 1.0)
"""Every logged reward lies here (POST /v1/feedback: `success` counts 1 or 0, `reward` is
0..1), so no policy's true value lies outside it."""


@dataclass(frozen=True)
class PolicyEstimate:
    estimated_reward: float
    ci_low: float
    ci_high: float
    warnings: list[str] = field(default_factory=list)
    """Why the numbers above need care, e.g. an estimate outside the reward range."""


def range_warnings(
    estimate: float,
    ci_low: float,
    ci_high: float,
    *,
    ess: float,
    n: int,
    min_ess: float = DEFAULT_MIN_EFFECTIVE_SAMPLES,
    reward_range: tuple[float, float] = REWARD_RANGE,
    confidence: float = 0.95,
) -> list[str]:
    """A warning when the estimate or its interval lies outside the reward range, and why.

    No policy can earn more (or less) than every reward could be, so such a value is an
    artefact of the estimator: doubly robust adds an importance-weighted correction to the
    reward model's prediction, and where the logs rarely chose what the policy would (a thin
    effective sample) a few large weights dominate it and can carry it past the range. SNIPS,
    a weighted mean of logged rewards, stays inside by construction.
    """
    low, high = reward_range
    span = f"[{low:g}, {high:g}]"
    interval = f"{confidence:.0%} interval [{ci_low:.4f}, {ci_high:.4f}]"
    if not low <= estimate <= high:
        what = f"estimated reward {estimate:.4f} ({interval}) lies outside the reward range {span}"
    elif ci_low < low or ci_high > high:
        what = f"the {interval} of {estimate:.4f} reaches outside the reward range {span}"
    else:
        return []
    if not np.isfinite(ess) or ess < min_ess:
        why = (
            f"it rests on an effective sample size of {ess:.1f} (of {n} held-out decisions), "
            f"below {min_ess:g}: the logs rarely chose what this policy would, so a few large "
            "importance weights dominate the estimate; treat it as unreliable and collect "
            "more data (or shadow traffic) before reading it"
        )
    else:
        why = (
            f"with an effective sample size of {ess:.1f} (of {n} held-out decisions) the "
            "importance-weighted correction still overshoots: read the value as near the "
            "range's edge, not beyond it"
        )
    return [f"{what}: no policy can score outside it; {why}"]


@dataclass(frozen=True)
class Lift:
    absolute: float
    relative: float | None
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class CompareResult:
    agent_type: str
    baseline_version: str
    candidate_version: str
    is_improvement: bool
    recommendation: Recommendation
    method: str
    n_samples: int
    effective_sample_size: float
    baseline: PolicyEstimate
    candidate: PolicyEstimate
    lift: Lift
    shadow: ShadowAgreement | None
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    data: LoggedDataset,
    baseline_probs: FloatArray,
    candidate_probs: FloatArray,
    *,
    agent_type: str,
    baseline_version: str,
    candidate_version: str,
    method: Method = "dr",
    reward_predictions: FloatArray | None = None,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    min_effective_samples: float = DEFAULT_MIN_EFFECTIVE_SAMPLES,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    confidence: float = 0.95,
    seed: int = 0,
    shadow: ShadowAgreement | None = None,
    bootstrap: RatioBootstrap | None = None,
) -> CompareResult:
    """Off-policy estimates of both policies on ``data`` with a paired bootstrap of the lift.

    ``*_probs`` are each policy's top-item probabilities for every logged candidate (see
    `estimators.target_probabilities`). ``effective_sample_size`` is the smaller of the two
    policies' Kish ESS: the estimate is only as trustworthy as its least supported side.
    ``bootstrap`` lets several comparisons of the same decisions share their resamples (and the
    cost of drawing them); by default they are drawn from ``n_bootstrap`` and ``seed``.
    """
    n = data.n_decisions
    if n == 0:
        raise ValueError("no logged decisions with feedback to compare on")
    b_num, b_den = contributions(method, data, baseline_probs, reward_predictions)
    c_num, c_den = contributions(method, data, candidate_probs, reward_predictions)
    b_ess = effective_sample_size(importance_weights(data, baseline_probs))
    c_ess = effective_sample_size(importance_weights(data, candidate_probs))
    ess = min(b_ess, c_ess)
    boot = bootstrap or RatioBootstrap(n, n_bootstrap=n_bootstrap, seed=seed)
    if boot.n != n:
        raise ValueError(f"the bootstrap resamples {boot.n} decisions, the data has {n}")
    b_boot, c_boot = boot.replicates(b_num, b_den), boot.replicates(c_num, c_den)
    b_point, c_point = float(b_num.sum() / b_den.sum()), float(c_num.sum() / c_den.sum())
    b_ci = percentile_interval(b_point, b_boot, confidence)
    c_ci = percentile_interval(c_point, c_boot, confidence)
    lift_ci = percentile_interval(c_point - b_point, c_boot - b_boot, confidence)
    lift = Lift(
        absolute=lift_ci.estimate,
        relative=lift_ci.estimate / b_point if b_point > 0 else None,
        ci_low=lift_ci.ci_low,
        ci_high=lift_ci.ci_high,
    )
    recommendation, reasons = _recommend(
        n, ess, lift, min_samples, min_effective_samples, confidence, METHOD_NAMES[method]
    )
    return CompareResult(
        agent_type=agent_type,
        baseline_version=baseline_version,
        candidate_version=candidate_version,
        is_improvement=recommendation == "promote",
        recommendation=recommendation,
        method=METHOD_NAMES[method],
        n_samples=n,
        effective_sample_size=ess,
        baseline=_estimate(b_point, b_ci, b_ess, n, min_effective_samples, confidence),
        candidate=_estimate(c_point, c_ci, c_ess, n, min_effective_samples, confidence),
        lift=lift,
        shadow=shadow,
        reasons=reasons,
    )


def _estimate(
    point: float, ci: Interval, ess: float, n: int, min_ess: float, confidence: float
) -> PolicyEstimate:
    warnings = range_warnings(
        point, ci.ci_low, ci.ci_high, ess=ess, n=n, min_ess=min_ess, confidence=confidence
    )
    return PolicyEstimate(point, ci.ci_low, ci.ci_high, warnings)


def _recommend(
    n: int,
    ess: float,
    lift: Lift,
    min_samples: int,
    min_ess: float,
    confidence: float,
    method: str,
) -> tuple[Recommendation, list[str]]:
    level = f"{confidence:.0%}"
    interval = f"[{lift.ci_low:+.4f}, {lift.ci_high:+.4f}]"
    reasons = [f"{method} estimate on {n} held-out decisions; lift {lift.absolute:+.4f}, "
               f"{level} paired bootstrap interval {interval}"]  # fmt: skip
    short = []
    if n < min_samples:
        short.append(f"only {n} decisions with feedback (minimum {min_samples})")
    if not np.isfinite(ess) or ess < min_ess:
        short.append(
            f"effective sample size {ess:.1f} is below {min_ess:g}: the logs rarely chose "
            "what one of the policies would choose"
        )
    if short:
        return "collect_more_data", reasons + short
    if lift.ci_low > 0:
        return "promote", [*reasons, "the lift's lower bound is above zero"]
    if lift.ci_high < 0:
        return "keep_current", [*reasons, "the candidate is estimated to be worse"]
    return "keep_current", [*reasons, "the lift is not distinguishable from zero"]
