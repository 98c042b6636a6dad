"""The rank and feedback contract of API.md."""

from __future__ import annotations

from typing import Annotated, NotRequired

from pydantic import BaseModel, ConfigDict, Field, model_validator, with_config
from typing_extensions import TypedDict

from policyhub.domain.routing import Variant
from policyhub.domain.versions import AGENT_TYPE_PATTERN, DEFAULT_AGENT_TYPE

MAX_CANDIDATES = 1000
MAX_FEATURES = 4096
FLOAT32_MAX = 3.4028234663852886e38


class Context(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    features: list[float] = Field(max_length=MAX_FEATURES)


# A TypedDict, not a model: a rank call validates up to 1,000 candidates, and plain dicts cost
# a fifth less to build than model instances (decision 095).
@with_config(ConfigDict(extra="forbid", strict=True))
class Candidate(TypedDict):
    """One retrieved item to rank."""

    id: Annotated[str, Field(min_length=1, max_length=256)]
    # Scores are float32 on the rank path; a larger finite double would become inf there.
    retrieval_score: Annotated[
        float, Field(allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX)
    ]
    features: Annotated[list[float], Field(max_length=MAX_FEATURES)]
    source: NotRequired[
        Annotated[str | None, Field(max_length=256, description="Default null.")]
    ]
    blocked: NotRequired[
        Annotated[bool, Field(description="Never returned when true. Default false.")]
    ]
    pinned: NotRequired[
        Annotated[bool, Field(description="Keeps its retrieval position. Default false.")]
    ]


class RankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    agent_type: str = Field(default=DEFAULT_AGENT_TYPE, pattern=AGENT_TYPE_PATTERN)
    context: Context
    candidates: list[Candidate] = Field(min_length=1, max_length=MAX_CANDIDATES)
    use_rl_ranking: bool = True
    routing_key: str | None = Field(default=None, min_length=1, max_length=256)
    top_k: int | None = Field(default=None, ge=1, le=MAX_CANDIDATES)

    @model_validator(mode="after")
    def _unique_ids(self) -> RankRequest:
        if len({c["id"] for c in self.candidates}) != len(self.candidates):
            raise ValueError("candidate ids must be unique")
        return self


class RankedItem(TypedDict):
    # A TypedDict, not a model: the rank path builds up to 1,000 of these per call and
    # serialises them as they are (RankResponse.served).
    id: str
    score: float
    rank: int


class RankResponse(BaseModel):
    decision_id: str
    agent_type: str
    policy_version: str | None
    variant: Variant
    use_rl_ranking: bool
    ranking: list[RankedItem]

    @classmethod
    def served(
        cls,
        decision_id: str,
        agent_type: str,
        policy_version: str | None,
        variant: Variant,
        use_rl_ranking: bool,
        ranking: list[RankedItem],
    ) -> RankResponse:
        """The response as the rank service built it: typed by construction, so not
        validated again (that took longer than scoring 100 candidates)."""
        return cls.model_construct(
            decision_id=decision_id,
            agent_type=agent_type,
            policy_version=policy_version,
            variant=variant,
            use_rl_ranking=use_rl_ranking,
            ranking=ranking,
        )


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    decision_id: str = Field(min_length=1, max_length=512)
    success: bool | None = None
    reward: float | None = Field(default=None, ge=0, le=1)
    clicked_ids: list[str] = Field(default_factory=list, max_length=MAX_CANDIDATES)

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackRequest:
        if self.success is None and self.reward is None and not self.clicked_ids:
            raise ValueError("give at least one of success, reward, clicked_ids")
        return self


class FeedbackAccepted(BaseModel):
    decision_id: str
    accepted: bool
