"""Moving production: promote and rollback (admin)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from policyhub.api import container
from policyhub.api.context import principal
from policyhub.api.models import (
    PromoteRequest,
    PromotionResponse,
    RollbackRequest,
    RollbackResponse,
)
from policyhub.domain.errors import invalid


def promote(body: Annotated[PromoteRequest, Body()]) -> PromotionResponse:
    if body.strategy != "immediate":
        raise invalid(
            "body.strategy",
            "only `immediate` is available in this release; "
            "the safe and canary pipelines are not deployed",
        )
    done = container.registry().promote_immediate(
        principal(), body.agent_type, body.version, body.reason
    )
    return PromotionResponse(
        version=done.version,
        agent_type=done.agent_type,
        promoted_at=done.promoted_at,
        previous_version=done.previous_version,
    )


def rollback(body: Annotated[RollbackRequest, Body()]) -> RollbackResponse:
    done = container.registry().rollback(principal(), body.agent_type, body.version, body.reason)
    return RollbackResponse(
        version=done.version,
        agent_type=done.agent_type,
        promoted_at=done.promoted_at,
        previous_version=done.previous_version,
        aborted_rollout_id=done.aborted_rollout_id,
    )
