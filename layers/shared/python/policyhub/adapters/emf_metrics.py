"""Serving metrics as CloudWatch EMF through Powertools Metrics.

Dimension sets: [agent_type, variant] and, during a rollout or experiment, [rollout_id,
variant]. Names: Requests, Errors, Latency (ms), ConstraintViolations, Successes, Failures.
One EMF document per call carries both dimension sets (they share `variant`'s value), so the
rank path writes one log line, not two; POWERTOOLS_METRICS_DISABLED silences them.

A decision of a rollout also counts what the rollout's health reader sums
(`domain.health_metrics`: its latency bucket, and whether it violated a constraint or was
shadow-scored) in a second directive of the same document, under [rollout_id, variant] only:
per-agent copies of ~250 bucket metrics would be paid for and read by nobody.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from policyhub.domain import health_metrics

NAMESPACE = "PolicyHub"


def rollout_metric_query(
    query_id: str,
    name: str,
    rollout_id: str,
    variant: str,
    stat: str,
    period: int,
    return_data: bool,
) -> dict[str, Any]:
    """A metric query (GetMetricData, alarm metrics) of one [rollout_id, variant] metric."""
    return {
        "Id": query_id,
        "ReturnData": return_data,
        "MetricStat": {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": name,
                "Dimensions": [
                    {"Name": "rollout_id", "Value": rollout_id},
                    {"Name": "variant", "Value": variant},
                ],
            },
            "Period": period,
            "Stat": stat,
        },
    }


_SERVING_COUNTS = frozenset({health_metrics.REQUESTS, health_metrics.ERRORS})
"""Health counts the first directive already carries under [rollout_id, variant]."""


def _flush(
    dims: dict[str, str],
    values: list[tuple[str, MetricUnit, float]],
    extra_dims: dict[str, str] | None = None,
    rollout_counts: list[str] | None = None,
) -> None:
    m = EphemeralMetrics(namespace=NAMESPACE, service="")  # no extra `service` dimension
    for k, v in dims.items():
        m.add_dimension(k, v)
    if extra_dims:
        m.add_dimensions(**extra_dims)
    for name, unit, value in values:
        m.add_metric(name=name, unit=unit, value=value)
    if not rollout_counts:
        m.flush_metrics()
        return
    doc = m.serialize_metric_set()
    doc["_aws"]["CloudWatchMetrics"].append({
        "Namespace": NAMESPACE,
        "Dimensions": [list(health_metrics.DIMENSIONS)],
        "Metrics": [{"Name": name, "Unit": "Count"} for name in rollout_counts],
    })  # fmt: skip
    out: dict[str, object] = dict(doc)
    out.update(dict.fromkeys(rollout_counts, 1.0))
    print(json.dumps(out, separators=(",", ":")))


def _emit(
    agent_type: str,
    variant: str,
    scope: str | None,
    values: list[tuple[str, MetricUnit, float]],
    rollout_counts: list[str] | None = None,
) -> None:
    _flush(
        {"agent_type": agent_type, "variant": variant},
        values,
        {"rollout_id": scope, "variant": variant} if scope else None,
        rollout_counts,
    )


class EmfServingMetrics:
    def __init__(self) -> None:
        self._enabled = not is_metrics_disabled()

    def decision(
        self,
        agent_type: str,
        variant: str,
        rollout_id: str | None,
        experiment_id: str | None,
        latency_ms: float,
        error: bool,
        violations: int,
        shadow: bool = False,
        shadow_error: bool = False,
    ) -> None:
        if not self._enabled:
            return
        values = [
            ("Requests", MetricUnit.Count, 1.0),
            ("Latency", MetricUnit.Milliseconds, latency_ms),
            ("Errors", MetricUnit.Count, float(error)),
            ("ConstraintViolations", MetricUnit.Count, float(violations)),
        ]
        counts = None
        if rollout_id:
            counts = [
                name
                for name in health_metrics.decision_counts(
                    latency_ms, error, violations, shadow, shadow_error
                )
                if name not in _SERVING_COUNTS
            ]
        _emit(agent_type, variant, rollout_id or experiment_id, values, counts)

    def feedback(
        self, agent_type: str, variant: str, rollout_id: str | None, success: bool | None
    ) -> None:
        if success is None or not self._enabled:
            return
        name = "Successes" if success else "Failures"
        _emit(agent_type, variant, rollout_id, [(name, MetricUnit.Count, 1.0)])


class EmfRolloutMetrics:
    """`Rollbacks` by agent: automatic (controller or alarm) and manual alike."""

    def __init__(self) -> None:
        self._enabled = not is_metrics_disabled()

    def rollback(self, agent_type: str, cause: str) -> None:
        if self._enabled:
            _flush({"agent_type": agent_type}, [("Rollbacks", MetricUnit.Count, 1.0)])
