"""EventBridge target: a per-rollout CloudWatch alarm entered ALARM → roll the rollout back.

The alarm's description names the rollout (policyhub.adapters.cloudwatch_alarms).
"""

import json
from typing import Any

from policyhub.api import container
from policyhub.settings import Need, check_at_cold_start

NEEDS: frozenset[Need] = frozenset()
"""Settings this function needs in AWS beyond the table and buckets (checked at init)."""
check_at_cold_start(NEEDS)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail = event.get("detail") or {}
    if (detail.get("state") or {}).get("value") != "ALARM":
        return {"rolled_back": False, "reason": "alarm is not in ALARM"}
    target = json.loads((detail.get("configuration") or {}).get("description") or "{}")
    after = container.rollouts().alarm_rollback(
        target["tenant_id"],
        target["agent_type"],
        target["rollout_id"],
        detail.get("alarmName", "?"),
    )
    return {"rolled_back": after is not None, "rollout_id": target["rollout_id"]}
