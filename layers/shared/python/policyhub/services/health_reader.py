"""Rollout health computed from the decision and feedback logs.

The local stack's exact equivalent of CloudWatch percentiles (moto computes none): requests,
fallback errors, latency p50/p93/p95/p97, feedback outcomes and excess constraint violations per
variant of one rollout, over one window, aggregated in SQL over the window's records
(docs/decisions/009-health-from-logs.md, 113).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from policyhub.domain.health import Health, HealthReadFailed, HealthWindow, VariantHealth
from policyhub.domain.health_sums import excess_violating
from policyhub.domain.interaction_records import OUTCOME_SUCCESS
from policyhub.domain.rollout import Rollout
from policyhub.ports import InteractionLog, LogTable


@dataclass
class _Tally:
    requests: int = 0
    errors: int = 0
    successes: int = 0
    failures: int = 0
    latency_ms: tuple[float | None, ...] = (None, None, None, None)
    """p50, p93, p95, p97 (linear interpolation, as numpy's percentile)."""
    violating: int = 0
    shadow: int = 0
    shadow_errors: int = 0

    def health(self, excess_violations: int = 0) -> VariantHealth:
        p50, p93, p95, p97 = self.latency_ms
        return VariantHealth(
            requests=self.requests,
            errors=self.errors,
            feedback_successes=self.successes,
            feedback_failures=self.failures,
            latency_p95_ms=p95,
            latency_p50_ms=p50,
            latency_p93_ms=p93,
            latency_p97_ms=p97,
            constraint_violations=excess_violations,
            shadow_decisions=self.shadow,
            shadow_errors=self.shadow_errors,
        )


def excess_violations(candidate: _Tally, baseline: _Tally) -> int:
    """Decisions with violations beyond what production's rate explains (one rule for every
    reader: `health_sums.excess_violating`)."""
    return excess_violating(
        candidate.violating, candidate.requests, baseline.violating, baseline.requests
    )


_SIDE = """
    CASE
        WHEN type = 'decision' THEN
            CASE WHEN assigned.variant = 'canary' OR $watching THEN 1 ELSE 0 END
        -- feedback belongs to whoever served: a fallback's outcome is production's
        WHEN policy_version = $candidate AND (variant = 'canary' OR $watching) THEN 1
        WHEN variant = 'production' AND NOT $watching THEN 0
    END"""
"""The side a decision or feedback of the rollout counts for (1: candidate, NULL: neither)."""

_ROLLOUT = "rollout_id = $rollout_id AND type IN ('decision', 'feedback')"

_TALLIES = f"""
    SELECT side,
        count(*) FILTER (decision) AS requests,
        count(*) FILTER (decision AND failed_version =
            CASE side WHEN 1 THEN $candidate ELSE $baseline END) AS errors,
        count(*) FILTER (NOT decision AND success_of IS true) AS successes,
        count(*) FILTER (NOT decision AND success_of IS false) AS failures,
        count(*) FILTER (decision AND cardinality(violations) > 0) AS violating,
        count(*) FILTER (decision AND shadow IS NOT NULL) AS shadow,
        count(*) FILTER (decision AND coalesce(shadow.error, '') != '') AS shadow_errors
    FROM (
        SELECT type = 'decision' AS decision, failed_version, violations, shadow,
            {_SIDE} AS side,
            -- feedback records carry no chosen_id: clicks alone give no outcome here
            {OUTCOME_SUCCESS.replace("chosen_id", "NULL::VARCHAR")} AS success_of
        FROM records WHERE {_ROLLOUT}
    )
    WHERE side IS NOT NULL
    GROUP BY side
"""
"""Per side: requests, errors charged to it, feedback outcomes, decisions with violations;
shadow runs (all of the candidate) counted on the side that served."""

_LATENCIES = f"""
    SELECT ({_SIDE})::TINYINT AS side, latency_ms FROM records
    WHERE {_ROLLOUT} AND type = 'decision' AND latency_ms IS NOT NULL
"""


def _percentiles(latencies: npt.NDArray[np.float64]) -> tuple[float | None, ...]:
    if not latencies.size:
        return (None, None, None, None)
    return tuple(float(q) for q in np.percentile(latencies, [50, 93, 95, 97]))


class LogHealthReader:
    def __init__(self, log: InteractionLog) -> None:
        self._log = log

    def read(self, rollout: Rollout, start: datetime, end: datetime) -> Health:
        try:
            with self._log.table(rollout.tenant_id, rollout.agent_type, start, end) as table:
                return self.summarise(rollout, table, start, end)
        except Exception as exc:
            return HealthReadFailed(
                window_start=start, window_end=end, error=f"{type(exc).__name__}: {exc}"[:300]
            )

    @staticmethod
    def summarise(
        rollout: Rollout, table: LogTable, start: datetime, end: datetime
    ) -> HealthWindow:
        tallies = {"baseline": _Tally(), "candidate": _Tally()}
        params = {
            "rollout_id": rollout.rollout_id,
            "candidate": rollout.candidate_version,
            "baseline": rollout.baseline_version,
            "watching": rollout.watching,
        }
        for side, *counts in table.rows(_TALLIES, params):
            requests, errors, successes, failures, violating, shadow, shadow_errors = counts
            tallies["candidate" if side else "baseline"] = _Tally(
                requests=requests, errors=errors, successes=successes, failures=failures,
                violating=violating, shadow=shadow, shadow_errors=shadow_errors,
            )  # fmt: skip
        latency = table.columns(
            _LATENCIES, {k: params[k] for k in ("rollout_id", "candidate", "watching")}
        )
        for side, tally in ((0, tallies["baseline"]), (1, tallies["candidate"])):
            tally.latency_ms = _percentiles(latency["latency_ms"][latency["side"] == side])
        base, cand = tallies["baseline"], tallies["candidate"]
        shadow_runs = base.shadow + cand.shadow
        shadow_errors = base.shadow_errors + cand.shadow_errors
        cand.shadow, cand.shadow_errors, base.shadow, base.shadow_errors = (
            shadow_runs, shadow_errors, 0, 0
        )
        in_shadow = rollout.current_step.stage.value == "shadow"
        candidate = cand.health(excess_violations(cand, base) if not in_shadow else 0)
        if in_shadow:
            candidate = VariantHealth(
                requests=shadow_runs, shadow_decisions=shadow_runs, shadow_errors=shadow_errors
            )
        return HealthWindow(
            window_start=start, window_end=end, baseline=base.health(), candidate=candidate
        )
