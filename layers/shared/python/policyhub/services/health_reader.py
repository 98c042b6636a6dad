"""Rollout health computed from the decision and feedback logs.

The local stack's exact equivalent of CloudWatch percentiles (moto computes none): requests,
fallback errors, latency p50/p95, feedback outcomes and excess constraint violations per variant
of one rollout, over one window (docs/decisions/009-health-from-logs.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from policyhub.domain.health import Health, HealthReadFailed, HealthWindow, VariantHealth
from policyhub.domain.health_sums import excess_violating
from policyhub.domain.interaction_records import outcome_of
from policyhub.domain.rollout import Rollout
from policyhub.ports import InteractionLog


@dataclass
class _Tally:
    requests: int = 0
    errors: int = 0
    successes: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)
    violating: int = 0
    shadow: int = 0
    shadow_errors: int = 0

    def health(self, excess_violations: int = 0) -> VariantHealth:
        lat = np.asarray(self.latencies, dtype=np.float64)
        p50, p93, p95, p97 = (
            (float(q) for q in np.percentile(lat, [50, 93, 95, 97]))
            if lat.size
            else (None, None, None, None)
        )
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


FIELDS = frozenset({
    "type", "rollout_id", "assigned", "latency_ms", "failed_version", "violations", "shadow",
    "policy_version", "variant", "success", "reward",
})
"""What `summarise` reads of a record (the log keeps only these of each, between looks)."""


class LogHealthReader:
    def __init__(self, log: InteractionLog) -> None:
        self._log = log

    def read(self, rollout: Rollout, start: datetime, end: datetime) -> Health:
        try:
            records = list(
                self._log.read(rollout.tenant_id, rollout.agent_type, start, end, FIELDS)
            )
        except Exception as exc:
            return HealthReadFailed(
                window_start=start, window_end=end, error=f"{type(exc).__name__}: {exc}"[:300]
            )
        return self.summarise(rollout, records, start, end)

    @staticmethod
    def summarise(
        rollout: Rollout, records: Iterable[Mapping[str, Any]], start: datetime, end: datetime
    ) -> HealthWindow:
        base, cand = _Tally(), _Tally()
        watching = rollout.watching
        candidate_version = rollout.candidate_version
        for r in records:
            if r.get("rollout_id") != rollout.rollout_id:
                continue
            if r["type"] == "decision":
                assigned = (r.get("assigned") or {}).get("variant")
                mine = cand if assigned == "canary" or watching else base
                mine.requests += 1
                mine.latencies.append(float(r["latency_ms"]))
                if r.get("failed_version") == (
                    candidate_version if mine is cand else rollout.baseline_version
                ):
                    mine.errors += 1
                if r.get("violations"):
                    mine.violating += 1
                shadow = r.get("shadow")
                if shadow is not None:
                    cand.shadow += 1
                    if shadow.get("error"):
                        cand.shadow_errors += 1
            elif r["type"] == "feedback":
                # Feedback belongs to whoever served: a fallback's outcome is production's.
                served_candidate = r.get("policy_version") == candidate_version and (
                    r.get("variant") == "canary" or watching
                )
                served_base = r.get("variant") == "production" and not watching
                tally = cand if served_candidate else base if served_base else None
                outcome = outcome_of(r)
                if tally is None or outcome is None:
                    continue
                if outcome.success:
                    tally.successes += 1
                else:
                    tally.failures += 1
        in_shadow = rollout.current_step.stage.value == "shadow"
        candidate = cand.health(excess_violations(cand, base) if not in_shadow else 0)
        if in_shadow:
            candidate = VariantHealth(
                requests=cand.shadow, shadow_decisions=cand.shadow, shadow_errors=cand.shadow_errors
            )
        return HealthWindow(
            window_start=start, window_end=end, baseline=base.health(), candidate=candidate
        )
