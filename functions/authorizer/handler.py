"""Lambda REQUEST authorizer: API key → tenant, tier, role (policyhub.api.authorizer)."""

from typing import Any

from policyhub.api.authorizer import authorize


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return authorize(event)
