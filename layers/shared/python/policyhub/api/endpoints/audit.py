"""The audit trail."""

from __future__ import annotations

from policyhub.api import container
from policyhub.api.context import principal
from policyhub.api.cursor import decode_cursor, encode_cursor
from policyhub.api.models import AuditPage
from policyhub.api.params import AgentTypeQuery, CursorQuery, LimitQuery
from policyhub.domain.versions import DEFAULT_AGENT_TYPE


def list_audit(
    agent_type: AgentTypeQuery = DEFAULT_AGENT_TYPE,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> AuditPage:
    tenant = principal().tenant_id
    scope = {"agent_type": agent_type}
    start = decode_cursor(cursor, "audit", tenant, scope) if cursor else None
    page = container.registry().list_audit(tenant, agent_type, limit, start)
    next_cursor = encode_cursor("audit", tenant, scope, page.next_key) if page.next_key else None
    return AuditPage(items=page.items, has_more=next_cursor is not None, next_cursor=next_cursor)
