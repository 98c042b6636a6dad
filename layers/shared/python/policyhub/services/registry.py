"""The policy registry: versions, the production pointer, promote/rollback, and the audit trail."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from policyhub.domain.access import Principal
from policyhub.domain.audit import AuditAction, AuditEvent
from policyhub.domain.deployment import Deployment
from policyhub.domain.errors import PolicyHubError
from policyhub.domain.promotion_rules import require_promotable, require_rollback_keeps_serving
from policyhub.domain.routing import ServedPolicy
from policyhub.domain.state_changes import move_production, next_revision, transition
from policyhub.domain.transition import Transition
from policyhub.domain.versions import (
    ArtifactRef,
    FeatureSchema,
    PolicyMetrics,
    PolicyStatus,
    PolicyVersion,
    SemVer,
    TrainedOn,
    next_version,
)
from policyhub.ports import ArtifactStore, Clock, Page, PageKey, PolicyStore

ArtifactValidator = Callable[[bytes, FeatureSchema], None]
"""Raises a 422 PolicyHubError when the bytes are not a usable policy for the schema."""

REGISTER_ATTEMPTS = 5


@dataclass(frozen=True)
class Lineage:
    parent_version: str | None = None
    training_job_id: str | None = None
    trained_on: TrainedOn | None = None
    offline_metrics: dict[str, Any] | None = None


@dataclass(frozen=True)
class Promotion:
    version: str
    agent_type: str
    promoted_at: datetime
    previous_version: str | None
    aborted_rollout_id: str | None = None


class Registry:
    def __init__(
        self,
        store: PolicyStore,
        artifacts: ArtifactStore,
        clock: Clock,
        validate_artifact: ArtifactValidator,
        max_artifact_bytes: int,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._clock = clock
        self._validate = validate_artifact
        self._max_artifact_bytes = max_artifact_bytes

    # ---- reads ---------------------------------------------------------------------------
    def deployment(self, tenant_id: str, agent_type: str) -> Deployment:
        return self._store.get_deployment(tenant_id, agent_type) or Deployment(
            agent_type=agent_type
        )

    def version(self, tenant_id: str, agent_type: str, version: str) -> PolicyVersion:
        SemVer.parse(version, "path.version")
        found = self._store.get_version(tenant_id, agent_type, version)
        if found is None:
            raise PolicyHubError(
                "version_not_found", f"no version {version} of agent {agent_type!r}"
            )
        return found

    def list_versions(
        self,
        tenant_id: str,
        agent_type: str,
        status: PolicyStatus | None,
        limit: int,
        start: PageKey | None,
    ) -> Page[PolicyVersion]:
        return self._store.list_versions(tenant_id, agent_type, status, limit, start)

    def list_audit(
        self, tenant_id: str, agent_type: str, limit: int, start: PageKey | None
    ) -> Page[AuditEvent]:
        return self._store.list_audit(tenant_id, agent_type, limit, start)

    # ---- register ------------------------------------------------------------------------
    def register(
        self,
        principal: Principal | None,
        tenant_id: str,
        agent_type: str,
        artifact: bytes,
        schema: FeatureSchema,
        notes: str | None = None,
        lineage: Lineage = Lineage(),
    ) -> PolicyVersion:
        if len(artifact) > self._max_artifact_bytes:
            raise PolicyHubError(
                "payload_too_large",
                f"artifact is {len(artifact)} bytes; the cap is {self._max_artifact_bytes}",
            )
        self._validate(artifact, schema)
        sha256 = hashlib.sha256(artifact).hexdigest()
        # Content-addressed, so storing before the registry write can never expose bad bytes.
        self._artifacts.put(tenant_id, agent_type, sha256, artifact)
        for attempt in range(REGISTER_ATTEMPTS):
            current = self.deployment(tenant_id, agent_type)
            latest = SemVer.parse(current.latest_version) if current.latest_version else None
            number = str(next_version(latest, current.latest_schema, schema))
            now = self._clock.now()
            created = PolicyVersion(
                version=number,
                agent_type=agent_type,
                status=PolicyStatus.CANDIDATE,
                created_at=now,
                parent_version=lineage.parent_version,
                training_job_id=lineage.training_job_id,
                artifact=ArtifactRef(sha256=sha256, size_bytes=len(artifact)),
                feature_schema=schema,
                trained_on=lineage.trained_on,
                metrics=PolicyMetrics(offline=lineage.offline_metrics or {}),
                notes=notes,
            )
            deployment = current.model_copy(
                update={
                    "latest_version": number,
                    "latest_schema": schema,
                    "total_versions": current.total_versions + 1,
                    "revision": current.revision + 1,
                }
            )
            audit = self._event(
                principal,
                AuditAction.REGISTER,
                agent_type,
                None,
                number,
                notes,
                {
                    "sha256": sha256,
                    "size_bytes": len(artifact),
                    "training_job_id": lineage.training_job_id,
                },
            )
            try:
                self._store.commit(
                    Transition(
                        tenant_id,
                        agent_type,
                        current.revision,
                        deployment,
                        new_versions=(created,),
                        audit=(audit,),
                    )
                )
                return created
            except PolicyHubError as exc:
                # Version numbers are ours to assign: a lost race just means take the next one.
                if exc.code != "concurrent_change" or attempt == REGISTER_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    # ---- promote / rollback ----------------------------------------------------------------
    def promote_immediate(
        self,
        principal: Principal,
        agent_type: str,
        version: str,
        reason: str | None,
        *,
        force: bool = False,
    ) -> Promotion:
        """`force` lets a version an earlier rollout found unhealthy be promoted again."""
        tenant_id = principal.tenant_id
        current = self.deployment(tenant_id, agent_type)
        target = self.version(tenant_id, agent_type, version)
        require_promotable(current, target, force=force)
        return self._move_production(
            principal,
            tenant_id,
            current,
            target,
            AuditAction.PROMOTE,
            reason,
            {"strategy": "immediate", **({"force": True} if force else {})},
        )

    def rollback(
        self,
        principal: Principal,
        agent_type: str,
        version: str,
        reason: str | None,
        *,
        force: bool = False,
    ) -> Promotion:
        """`force` restores a version whose feature schema differs from production's
        (decision 105)."""
        tenant_id = principal.tenant_id
        current = self.deployment(tenant_id, agent_type)
        target = self.version(tenant_id, agent_type, version)
        if target.status == PolicyStatus.PRODUCTION:
            raise PolicyHubError(
                "already_production", f"{version} is already in production; nothing to roll back"
            )
        if target.status != PolicyStatus.RETIRED:
            raise PolicyHubError(
                "not_rollbackable",
                f"{version} is {target.status.value}; only "
                "a retired (previously production) version can be restored",
            )
        details = require_rollback_keeps_serving(
            self.serving(tenant_id, current), target, force=force
        )
        return self._move_production(
            principal, tenant_id, current, target, AuditAction.ROLLBACK, reason, details
        )

    def serving(self, tenant_id: str, current: Deployment) -> ServedPolicy | None:
        """What production serves (None before the first promotion)."""
        if current.production is not None or current.production_version is None:
            return current.production
        serving = self.version(tenant_id, current.agent_type, current.production_version)
        return ServedPolicy.of(serving)

    def production_record(self, tenant_id: str, current: Deployment) -> PolicyVersion | None:
        """The version record `current` names as production: what `move_production` retires."""
        old = current.production_version
        return None if old is None else self.version(tenant_id, current.agent_type, old)

    def _move_production(
        self,
        principal: Principal | None,
        tenant_id: str,
        current: Deployment,
        target: PolicyVersion,
        action: AuditAction,
        reason: str | None,
        details: dict[str, Any],
    ) -> Promotion:
        agent_type = current.agent_type
        now = self._clock.now()
        old = current.production_version
        change = move_production(current, target, self.production_record(tenant_id, current), now)
        audit = self._event(
            principal,
            action,
            agent_type,
            old,
            target.version,
            reason,
            {**details, "revision": next_revision(current)},
        )
        self._store.commit(transition(tenant_id, current, change, audit=(audit,)))
        return Promotion(target.version, agent_type, now, old)

    def _event(
        self,
        principal: Principal | None,
        action: AuditAction,
        agent_type: str | None,
        from_version: str | None,
        to_version: str | None,
        reason: str | None,
        details: dict[str, Any],
    ) -> AuditEvent:
        return AuditEvent(
            event_id=uuid.uuid4().hex,
            at=self._clock.now(),
            actor=principal.key_id if principal else "system",
            action=action,
            agent_type=agent_type,
            from_version=from_version,
            to_version=to_version,
            reason=reason,
            details=details,
        )
