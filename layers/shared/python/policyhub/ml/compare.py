"""Baseline vs candidate on the same held-out decisions, shaped like API.md's compare response."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from policyhub.ml.dataset import LoggedDataset
from policyhub.ml.estimators import (
    DEFAULT_BOOTSTRAP,
    METHOD_NAMES,
    FloatArray,
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
DEFAULT_MIN_EFFECTIVE_SAMPLES = 100.0


@dataclass(frozen=True)
class PolicyEstimate:
    estimated_reward: float
    ci_low: float
    ci_high: float


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
) -> CompareResult:
    """Off-policy estimates of both policies on ``data`` with a paired bootstrap of the lift.

    ``*_probs`` are each policy's top-item probabilities for every logged candidate (see
    `estimators.target_probabilities`). ``effective_sample_size`` is the smaller of the two
    policies' Kish ESS: the estimate is only as trustworthy as its least supported side.
    """
    n = data.n_decisions
    if n == 0:
        raise ValueError("no logged decisions with feedback to compare on")
    b_num, b_den = contributions(method, data, baseline_probs, reward_predictions)
    c_num, c_den = contributions(method, data, candidate_probs, reward_predictions)
    ess = min(
        effective_sample_size(importance_weights(data, baseline_probs)),
        effective_sample_size(importance_weights(data, candidate_probs)),
    )
    boot = RatioBootstrap(n, n_bootstrap=n_bootstrap, seed=seed)
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
        baseline=PolicyEstimate(b_point, b_ci.ci_low, b_ci.ci_high),
        candidate=PolicyEstimate(c_point, c_ci.ci_low, c_ci.ci_high),
        lift=lift,
        shadow=shadow,
        reasons=reasons,
    )


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
