"""Tiers, roles and the caller identity the authorizer derives from an API key."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Tier(StrEnum):
    FREE = "free"
    PRO = "pro"


class Role(StrEnum):
    MEMBER = "member"
    ADMIN = "admin"


_TIER_RANK = {Tier.FREE: 0, Tier.PRO: 1}
_ROLE_RANK = {Role.MEMBER: 0, Role.ADMIN: 1}


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: str
    tier: Tier
    role: Role

    def satisfies(self, tier: Tier, role: Role) -> bool:
        return (
            _TIER_RANK[self.tier] >= _TIER_RANK[tier] and _ROLE_RANK[self.role] >= _ROLE_RANK[role]
        )

    def as_context(self) -> dict[str, str]:
        return {
            "tenant_id": self.tenant_id,
            "key_id": self.key_id,
            "tier": self.tier.value,
            "role": self.role.value,
        }

    @classmethod
    def from_context(cls, ctx: dict[str, object]) -> Principal:
        return cls(
            str(ctx["tenant_id"]),
            str(ctx["key_id"]),
            Tier(str(ctx["tier"])),
            Role(str(ctx["role"])),
        )
