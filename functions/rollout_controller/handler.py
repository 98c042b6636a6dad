"""Step Functions task: one controller step of a rollout (policyhub.services.rollouts).

Input `{tenant_id, agent_type, rollout_id}`; output `{done, wait_seconds, state, decision}` for
the workflow's Choice and Wait states. A lost race is not a failure: the loop judges again.
"""

from dataclasses import asdict
from typing import Any

from policyhub.api import container
from policyhub.domain.errors import PolicyHubError
from policyhub.settings import Need, check_at_cold_start

NEEDS: frozenset[Need] = frozenset()
"""Settings this function needs in AWS beyond the table and buckets (checked at init)."""
check_at_cold_start(NEEDS)

RETRY_SECONDS = 5


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        tick = container.rollouts().tick(
            event["tenant_id"], event["agent_type"], event["rollout_id"]
        )
    except PolicyHubError as err:
        if err.code != "concurrent_change":
            raise
        return {
            "done": False,
            "wait_seconds": RETRY_SECONDS,
            "state": "unknown",
            "decision": "retry",
        }
    return asdict(tick)
