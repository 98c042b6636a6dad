"""Registry endpoints: status, list, get, register."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from policyhub.api import container
from policyhub.api.context import principal
from policyhub.api.cursor import decode_cursor, encode_cursor
from policyhub.api.models import (
    ExperimentView,
    PolicyPage,
    ProductionInfo,
    RegisterRequest,
    StatusResponse,
)
from policyhub.api.params import AgentTypeQuery, CursorQuery, LimitQuery, VersionPath
from policyhub.domain.deployment import PreviousVersion
from policyhub.domain.errors import invalid
from policyhub.domain.versions import DEFAULT_AGENT_TYPE, PolicyStatus, PolicyVersion


def get_status(agent_type: AgentTypeQuery = DEFAULT_AGENT_TYPE) -> StatusResponse:
    tenant = principal().tenant_id
    registry = container.registry()
    d = registry.deployment(tenant, agent_type)
    production = None
    if d.production_version is not None:
        version = registry.version(tenant, agent_type, d.production_version)
        production = ProductionInfo(
            version=version.version,
            promoted_at=version.promoted_at,
            metrics=version.metrics.model_dump(),
            feature_schema=version.feature_schema,
        )
    rollout = (
        container.rollouts().get(tenant, agent_type, d.active_rollout_id)
        if d.active_rollout_id
        else None
    )
    return StatusResponse(
        agent_type=agent_type,
        production=production,
        previous=_with_schemas(tenant, agent_type, d.previous),
        rollout=rollout,
        experiment=(
            ExperimentView.model_validate(
                container.experiments().get(tenant, agent_type, d.active_experiment_id)
            )
            if d.active_experiment_id
            else None
        ),
        total_versions=d.total_versions,
    )


def _with_schemas(
    tenant: str, agent_type: str, previous: list[PreviousVersion]
) -> list[PreviousVersion]:
    """Every rollback target with its feature schema; pointers written before the schema was
    kept on them (decision 105) get it from the version record."""
    registry = container.registry()
    return [
        p
        if p.feature_schema is not None
        else p.model_copy(
            update={
                "feature_schema": registry.version(tenant, agent_type, p.version).feature_schema
            }
        )
        for p in previous
    ]


def list_policies(
    agent_type: AgentTypeQuery = DEFAULT_AGENT_TYPE,
    status: Annotated[PolicyStatus | None, Query(description="Only this status.")] = None,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
) -> PolicyPage:
    tenant = principal().tenant_id
    scope = {"agent_type": agent_type, "status": status.value if status else None}
    start = decode_cursor(cursor, "versions", tenant, scope) if cursor else None
    page = container.registry().list_versions(tenant, agent_type, status, limit, start)
    next_cursor = encode_cursor("versions", tenant, scope, page.next_key) if page.next_key else None
    return PolicyPage(items=page.items, has_more=next_cursor is not None, next_cursor=next_cursor)


def get_policy(
    version: VersionPath, agent_type: AgentTypeQuery = DEFAULT_AGENT_TYPE
) -> PolicyVersion:
    return container.registry().version(principal().tenant_id, agent_type, version)


def register_policy(body: Annotated[RegisterRequest, Body()]) -> PolicyVersion:
    try:
        artifact = base64.b64decode(body.artifact_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid("body.artifact_base64", "is not valid base64") from exc
    p = principal()
    return container.registry().register(
        p, p.tenant_id, body.agent_type, artifact, body.feature_schema, body.notes
    )
