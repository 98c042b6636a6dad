"""The single-table key design (docs/decisions/002-registry-table-design.md)."""

from __future__ import annotations

from datetime import datetime

from policyhub.domain.timestamps import utc_iso
from policyhub.domain.versions import SemVer

DEPLOYMENT_SK = "DEPLOYMENT"
CONSTRAINTS_SK = "CONSTRAINTS"
VERSION_PREFIX = "VERSION#"
KEY_SK = "KEY"
ROLLOUT_PREFIX = "ROLLOUT#"


def agent_pk(tenant_id: str, agent_type: str) -> str:
    return f"T#{tenant_id}#A#{agent_type}"


def version_sk(version: str) -> str:
    return f"{VERSION_PREFIX}{SemVer.parse(version).sort_key}"


def audit_pk(tenant_id: str) -> str:
    return f"T#{tenant_id}#AUDIT"


def audit_sk(at: datetime, event_id: str) -> str:
    return f"{utc_iso(at)}#{event_id}"


def key_pk(key_id: str) -> str:
    return f"KEY#{key_id}"


def tenant_keys_gsi(tenant_id: str) -> str:
    return f"T#{tenant_id}#KEYS"


def rollout_sk(rollout_id: str) -> str:
    return f"{ROLLOUT_PREFIX}{rollout_id}"


def experiment_sk(experiment_id: str) -> str:
    return f"EXPERIMENT#{experiment_id}"
