"""Per-rollout CloudWatch alarms: the immediate trigger beside the controller's judgement.

Metric math over the serving EMF metrics ([rollout_id, variant] dimensions): the candidate's
success rate and its p95 latency against production's, each only once a minute holds enough
samples. An ALARM reaches functions/rollout_alarm through EventBridge; the description carries
which rollout it guards. moto stores these alarms but never evaluates them
(docs/decisions/010-rollout-alarms.md).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from policyhub.adapters import aws
from policyhub.adapters.emf_metrics import rollout_metric_query
from policyhub.domain.rollout import Rollout

logger = logging.getLogger("policyhub.alarms")
PERIOD = 60
MIN_SAMPLES = 200


def alarm_names(rollout: Rollout) -> list[str]:
    return [f"policyhub-rollout-{rollout.rollout_id}-{kind}" for kind in ("success", "latency")]


def _metric(id_: str, name: str, rollout_id: str, variant: str, stat: str) -> dict[str, Any]:
    return rollout_metric_query(id_, name, rollout_id, variant, stat, PERIOD, return_data=False)


def alarm_definitions(rollout: Rollout) -> list[dict[str, Any]]:
    rid, cfg = rollout.rollout_id, rollout.config
    description = json.dumps(
        {"tenant_id": rollout.tenant_id, "agent_type": rollout.agent_type, "rollout_id": rid}
    )
    success_name, latency_name = alarm_names(rollout)
    common = {
        "AlarmDescription": description,
        "EvaluationPeriods": 2,
        "DatapointsToAlarm": 2,
        "TreatMissingData": "notBreaching",
        "ActionsEnabled": False,
    }
    return [
        {
            **common,
            "AlarmName": success_name,
            "ComparisonOperator": "LessThanThreshold",
            "Threshold": cfg.min_success_rate,
            "Metrics": [
                _metric("s", "Successes", rid, "canary", "Sum"),
                _metric("f", "Failures", rid, "canary", "Sum"),
                {
                    "Id": "rate",
                    "ReturnData": True,
                    "Label": "candidate success rate",
                    "Expression": f"IF(s + f >= {MIN_SAMPLES}, s / (s + f), 1)",
                },
            ],
        },
        {
            **common,
            "AlarmName": latency_name,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 1 + cfg.max_latency_increase,
            "Metrics": [
                _metric("c", "Latency", rid, "canary", "p95"),
                _metric("b", "Latency", rid, "production", "p95"),
                _metric("n", "Requests", rid, "canary", "Sum"),
                {
                    "Id": "ratio",
                    "ReturnData": True,
                    "Label": "candidate p95 / production p95",
                    "Expression": f"IF(n >= {MIN_SAMPLES} AND b > 0, c / b, 0)",
                },
            ],
        },
    ]


class CloudWatchRolloutAlarms:
    def create(self, rollout: Rollout) -> None:
        for definition in alarm_definitions(rollout):
            aws.client("cloudwatch").put_metric_alarm(**definition)

    def delete(self, rollout: Rollout) -> None:
        aws.client("cloudwatch").delete_alarms(AlarmNames=alarm_names(rollout))
