"""Audit events: who changed what, when, from which version to which, and why."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    """One change: who, when, from which version to which, why, and the evidence."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    event_id: str
    """Unique id of the event."""
    at: datetime
    """When it happened (UTC)."""
    actor: str
    """The API key id that made the change, or `system`."""
    action: AuditAction
    """What happened."""
    agent_type: str | None
    """The agent it concerns; null for key changes."""
    from_version: str | None = None
    """The version production (or the rollout) moved from, when it applies."""
    to_version: str | None = None
    """The version it moved to, when it applies."""
    reason: str | None = None
    """The reason given, or the system's reason."""
    details: dict[str, Any] = Field(default_factory=dict)
    """Evidence: e.g. a rollout's step numbers, `force`, the schema change; free-form."""
