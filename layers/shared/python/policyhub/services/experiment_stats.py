"""Per-arm statistics of an experiment: rates with intervals, a winner only when significant,
and a sample-ratio-mismatch check (docs/decisions/011-experiment-statistics.md)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from policyhub.domain.experiment import ArmResult, ArmSpec
from policyhub.domain.interaction_records import OUTCOME_REWARD, OUTCOME_SUCCESS
from policyhub.ports import LogTable

ALPHA = 0.05
MIN_OUTCOMES = 100
"""Below this many outcomes per arm no winner is named, whatever the p-value."""


@dataclass
class _Arm:
    decisions: int = 0
    rewards: list[float] = field(default_factory=list)
    successes: int = 0
    latency_p95_ms: float | None = None


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


_ARM_RECORDS = "experiment_id = $experiment AND variant = 'experiment'"


def summarise(experiment_id: str, arms: list[ArmSpec], table: LogTable) -> dict[str, Any]:
    tallies = {a.version: _Arm() for a in arms}
    params = {"experiment": experiment_id}
    where = _ARM_RECORDS
    for version, decisions, p95 in table.rows(
        f"""SELECT policy_version, count(*), quantile_cont(latency_ms, 0.95) FROM records
            WHERE type = 'decision' AND {where} GROUP BY ALL""", params
    ):
        if version in tallies:
            tallies[version].decisions, tallies[version].latency_p95_ms = int(decisions), p95
    outcomes = table.columns(
        f"""SELECT policy_version, reward_of, success_of FROM (
                SELECT policy_version, ord, {OUTCOME_REWARD} AS reward_of,
                       {OUTCOME_SUCCESS} AS success_of
                FROM records WHERE type = 'feedback' AND {where})
            WHERE reward_of IS NOT NULL ORDER BY ord""", params
    )
    for version, reward, success in zip(
        outcomes["policy_version"].tolist(), outcomes["reward_of"].tolist(),
        outcomes["success_of"].tolist(), strict=True,
    ):  # fmt: skip
        arm = tallies.get(version)
        if arm is not None:
            arm.rewards.append(float(reward))
            arm.successes += bool(success)
    results = [_arm_result(spec, tallies[spec.version]) for spec in arms]
    winner, p_value = _winner(results, tallies)
    return {
        "variants": [r.model_dump() for r in results],
        "winner": winner,
        "p_value": p_value,
        "srm_p_value": _srm(arms, tallies),
    }


def _arm_result(spec: ArmSpec, arm: _Arm) -> ArmResult:
    n = len(arm.rewards)
    mean = float(np.mean(arm.rewards)) if n else None
    low: float | None
    high: float | None
    if n >= 2:
        sem = float(np.std(arm.rewards, ddof=1)) / math.sqrt(n)
        low, high = (mean or 0) - 1.96 * sem, (mean or 0) + 1.96 * sem
        low, high = max(0.0, low), min(1.0, high)
    else:
        low, high = None, None
    return ArmResult(
        version=spec.version,
        traffic_percent=spec.traffic_percent,
        decisions=arm.decisions,
        outcomes=n,
        success_rate=arm.successes / n if n else None,
        mean_reward=mean,
        ci_low=low,
        ci_high=high,
        latency_p95_ms=arm.latency_p95_ms,
    )


def _winner(results: list[ArmResult], tallies: dict[str, _Arm]) -> tuple[str | None, float | None]:
    """Welch's t-test of the best arm's mean reward against every other (Bonferroni)."""
    ranked = sorted(
        (r for r in results if r.mean_reward is not None),
        key=lambda r: r.mean_reward or 0.0,
        reverse=True,
    )
    if len(ranked) < 2:
        return None, None
    best = ranked[0]
    worst_p = 0.0
    for other in ranked[1:]:
        a, b = tallies[best.version].rewards, tallies[other.version].rewards
        if len(a) < 2 or len(b) < 2:
            return None, None
        if np.var(a) == 0 and np.var(b) == 0:
            p = 0.0 if np.mean(a) != np.mean(b) else 1.0
        else:
            with warnings.catch_warnings():  # one arm may be all successes: zero variance
                warnings.simplefilter("ignore", RuntimeWarning)
                p = float(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
        worst_p = max(worst_p, min(1.0, p * (len(ranked) - 1)))
    enough = all(r.outcomes >= MIN_OUTCOMES for r in ranked)
    return (best.version if enough and worst_p < ALPHA else None), worst_p


def _srm(arms: list[ArmSpec], tallies: dict[str, _Arm]) -> float | None:
    """Chi-square of observed decisions per arm against the configured split."""
    observed = np.array([tallies[a.version].decisions for a in arms], dtype=float)
    total = observed.sum()
    if total == 0:
        return None
    expected = np.array([a.traffic_percent for a in arms]) / 100 * total
    return float(stats.chisquare(observed, expected).pvalue)
