"""EventBridge schedule (every 6 hours): start training for every agent with enough new data."""

from __future__ import annotations

from typing import Any

from policyhub.api import container


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return container.training().run_schedule().as_dict()
