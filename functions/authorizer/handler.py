"""Lambda REQUEST authorizer: API key → tenant, tier, role (policyhub.api.authorizer)."""

from typing import Any

from policyhub.api.authorizer import authorize
from policyhub.settings import Need, check_at_cold_start

NEEDS: frozenset[Need] = frozenset()
"""Settings this function needs in AWS beyond the table and buckets (checked at init)."""
check_at_cold_start(NEEDS)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return authorize(event)
