"""EventBridge schedule (every 6 hours): start training for every agent with enough new data."""

from __future__ import annotations

from typing import Any

from policyhub.api import container
from policyhub.settings import Need, check_at_cold_start

NEEDS: frozenset[Need] = frozenset({Need.RUN_TRAINING})
"""Settings this function needs in AWS beyond the table and buckets (checked at init)."""
check_at_cold_start(NEEDS)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container.training().run_schedule().as_dict()
