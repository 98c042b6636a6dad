"""Audit events: who changed what, when, from which version to which, and why."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class AuditAction(StrEnum):
    REGISTER = "register"
    TRAIN = "train"
    ROLLOUT_START = "rollout_start"
    ROLLOUT_STEP = "rollout_step"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    AUTO_ROLLBACK = "auto_rollback"
    ABORT = "abort"
    EXPERIMENT_START = "experiment_start"
    EXPERIMENT_STOP = "experiment_stop"
    CONSTRAINTS_UPDATE = "constraints_update"
    KEY_CREATE = "key_create"
    KEY_REVOKE = "key_revoke"


SYSTEM_ACTOR = "system"


class AuditEvent(BaseModel):
    event_id: str
    at: datetime
    actor: str
    action: AuditAction
    agent_type: str | None
    from_version: str | None = None
    to_version: str | None = None
    reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
