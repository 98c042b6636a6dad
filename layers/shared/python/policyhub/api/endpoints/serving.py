"""The retrieval product's calls: rank and feedback (any valid key)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from policyhub.api import container
from policyhub.api.context import principal
from policyhub.domain.serving import FeedbackAccepted, FeedbackRequest, RankRequest, RankResponse


def rank(body: Annotated[RankRequest, Body()]) -> RankResponse:
    return container.rank_service().rank(principal().tenant_id, body)


def feedback(body: Annotated[FeedbackRequest, Body()]) -> FeedbackAccepted:
    return container.rank_service().feedback(principal().tenant_id, body)
