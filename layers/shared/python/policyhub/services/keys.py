"""API key lifecycle and authentication."""

from __future__ import annotations

import re
import uuid

from policyhub.domain.access import Principal, Role, Tier
from policyhub.domain.audit import SYSTEM_ACTOR, AuditAction, AuditEvent
from policyhub.domain.errors import invalid
from policyhub.domain.keys import ApiKey, hash_secret, new_key_material, parse_key
from policyhub.ports import Clock, KeyStore

TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class KeyService:
    def __init__(self, store: KeyStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def create(
        self, tenant_id: str, tier: Tier, role: Role, actor: str = SYSTEM_ACTOR
    ) -> tuple[ApiKey, str]:
        """A new key and its plaintext, which is never stored and cannot be shown again."""
        if not TENANT_PATTERN.match(tenant_id):
            raise invalid("tenant", "must match ^[a-z0-9][a-z0-9_-]{0,62}$")
        key_id, secret, plaintext = new_key_material()
        now = self._clock.now()
        key = ApiKey(
            key_id=key_id,
            tenant_id=tenant_id,
            tier=tier,
            role=role,
            secret_hash=hash_secret(secret),
            created_at=now,
        )
        self._store.put_key(tenant_id, key, self._event(AuditAction.KEY_CREATE, key, actor))
        return key, plaintext

    def list(self, tenant_id: str) -> list[ApiKey]:
        return sorted(self._store.list_keys(tenant_id), key=lambda k: k.created_at)

    def revoke(self, key_id: str, actor: str = SYSTEM_ACTOR) -> ApiKey:
        key = self._store.get_key(key_id)
        if key is None:
            raise invalid("key_id", f"no such key {key_id}", code="not_found")
        return self._store.revoke_key(
            key_id, self._clock.now(), self._event(AuditAction.KEY_REVOKE, key, actor)
        )

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The caller behind an `Authorization: Bearer` header, or None (→ 401)."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        parsed = parse_key(token.strip())
        if parsed is None:
            return None
        key_id, secret = parsed
        key = self._store.get_key(key_id)
        if key is None or not key.active or not key.matches(secret):
            return None
        return Principal(key.tenant_id, key.key_id, key.tier, key.role)

    def _event(self, action: AuditAction, key: ApiKey, actor: str) -> AuditEvent:
        return AuditEvent(
            event_id=uuid.uuid4().hex,
            at=self._clock.now(),
            actor=actor,
            action=action,
            agent_type=None,
            details={"key_id": key.key_id, "tier": key.tier.value, "role": key.role.value},
        )
