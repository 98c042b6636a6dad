"""Constitutional constraints per agent, changed by admins with an audit trail."""

from __future__ import annotations

import uuid

from policyhub.domain.access import Principal
from policyhub.domain.audit import AuditAction, AuditEvent
from policyhub.domain.constraints import Constraints
from policyhub.ports import Clock, PolicyStore


class ConstraintService:
    def __init__(self, store: PolicyStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def get(self, tenant_id: str, agent_type: str) -> Constraints:
        return self._store.get_constraints(tenant_id, agent_type)

    def replace(
        self, principal: Principal, agent_type: str, constraints: Constraints
    ) -> Constraints:
        before, revision = self._store.get_constraints_revision(principal.tenant_id, agent_type)
        event = AuditEvent(
            event_id=uuid.uuid4().hex,
            at=self._clock.now(),
            actor=principal.key_id,
            action=AuditAction.CONSTRAINTS_UPDATE,
            agent_type=agent_type,
            details={"before": before.model_dump(), "after": constraints.model_dump()},
        )
        self._store.put_constraints(
            principal.tenant_id, agent_type, constraints, event, expected_revision=revision
        )
        return constraints
