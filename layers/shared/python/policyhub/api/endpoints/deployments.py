"""Moving production: promote (safe, canary, immediate) and rollback (admin)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from policyhub.api import container
from policyhub.api.context import principal
from policyhub.api.models import (
    PromoteRequest,
    PromotionResponse,
    RollbackRequest,
    RollbackResponse,
)
from policyhub.domain.rollout import Rollout, RolloutStrategy


def promote(body: Annotated[PromoteRequest, Body()]) -> PromotionResponse | Rollout:
    """`immediate` answers 200 with the promotion; `safe`/`canary` 202 with the Rollout."""
    if body.strategy == "immediate":  # PromoteRequest refuses a pipeline with it
        done = container.registry().promote_immediate(
            principal(), body.agent_type, body.version, body.reason, force=body.force
        )
        return PromotionResponse(
            version=done.version,
            agent_type=done.agent_type,
            promoted_at=done.promoted_at,
            previous_version=done.previous_version,
        )
    rollout = container.rollouts().start(
        principal(),
        body.agent_type,
        body.version,
        RolloutStrategy(body.strategy),
        body.reason,
        body.pipeline.model_dump(exclude_unset=True) if body.pipeline is not None else None,
        force=body.force,
    )
    return Response(
        status_code=202,
        content_type="application/json",  # type: ignore[return-value]
        body=rollout,
    )


def rollback(body: Annotated[RollbackRequest, Body()]) -> RollbackResponse:
    done = container.rollouts().rollback(
        principal(), body.agent_type, body.version, body.reason, force=body.force
    )
    return RollbackResponse(
        version=done.version,
        agent_type=done.agent_type,
        promoted_at=done.promoted_at,
        previous_version=done.previous_version,
        aborted_rollout_id=done.aborted_rollout_id,
    )
