"""The rank and feedback contract of API.md."""

from __future__ import annotations

from typing import Annotated, NotRequired

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator, with_config
from typing_extensions import TypedDict

from policyhub.domain.routing import Variant
from policyhub.domain.schema_rules import rules
from policyhub.domain.versions import AGENT_TYPE_PATTERN, DEFAULT_AGENT_TYPE

MAX_CANDIDATES = 1000
MAX_FEATURES = 4096
MAX_TEXT_LENGTH = 256
"""The longest candidate id, `source` or `routing_key`."""
FLOAT32_MAX = 3.4028234663852886e38

Feature = Annotated[
    float,
    # Stated for the OpenAPI document, checked where the features become the policy's float32
    # input (ml.features: a value beyond float32 is a 422 naming it). A per-item constraint
    # here would cost the rank path a check per float that it already makes on the matrix.
    Field(json_schema_extra={"minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}),
]
"""A feature value: a finite number within float32's range."""


class Context(BaseModel):
    """What is known of the request (the user, the query)."""

    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)
    features: list[Feature] = Field(max_length=MAX_FEATURES)
    """Context features: exactly the serving version's `feature_schema.context_dim` of them
    (422 feature_dimension_mismatch otherwise)."""


# A TypedDict, not a model: a rank call validates up to 1,000 candidates, and plain dicts cost
# a fifth less to build than model instances (decision 095).
@with_config(ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True))
class Candidate(TypedDict):
    """One retrieved item to rank."""

    id: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_LENGTH)]
    """The item's id, unique within the request."""
    # Scores are float32 on the rank path; a larger finite double would become inf there.
    retrieval_score: Annotated[
        float, Field(allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX)
    ]
    """The retriever's score; retrieval order is by this, descending."""
    features: Annotated[list[Feature], Field(max_length=MAX_FEATURES)]
    """Item features: exactly the serving version's `feature_schema.item_dim` of them."""
    source: NotRequired[
        Annotated[str | None, Field(max_length=MAX_TEXT_LENGTH, description="Default null.")]
    ]
    blocked: NotRequired[
        Annotated[bool, Field(description="Never returned when true. Default false.")]
    ]
    pinned: NotRequired[
        Annotated[bool, Field(description="Keeps its retrieval position. Default false.")]
    ]


class RankRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        use_attribute_docstrings=True,
        json_schema_extra={
            **rules(candidates="each candidate's id appears once"),
            "examples": [
                {
                    "agent_type": "memory_manager",
                    "context": {"features": [0.2, 0.1, 0.0, 0.5, 0.3, 0.9, 0.4, 0.1]},
                    "candidates": [
                        {
                            "id": "mem-17",
                            "retrieval_score": 0.82,
                            "features": [0.3, 0.1, 0.7, 0.0, 0.2, 0.4, 0.6, 0.5],
                            "source": "notes",
                        },
                        {
                            "id": "mem-42",
                            "retrieval_score": 0.77,
                            "features": [0.9, 0.2, 0.1, 0.3, 0.0, 0.8, 0.5, 0.4],
                            "pinned": True,
                        },
                    ],
                    "routing_key": "user-123",
                    "top_k": 2,
                }
            ],
        },
    )
    agent_type: str = Field(
        default=DEFAULT_AGENT_TYPE,
        pattern=AGENT_TYPE_PATTERN,
        description="The agent; `memory_manager` when left out.",
    )
    context: Context
    """The request's context features."""
    candidates: list[Candidate] = Field(min_length=1, max_length=MAX_CANDIDATES)
    """1 to 1000 retrieved items, ids unique."""
    use_rl_ranking: bool = True
    """False returns pure retrieval order (constraints still apply) and `policy_version` null."""
    routing_key: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_LENGTH)
    """Sticky assignment key (e.g. a user id): the same key gets the same variant during a
    canary or an experiment. A random one per request when left out."""
    top_k: int | None = Field(default=None, ge=1, le=MAX_CANDIDATES)
    """Return at most this many items; all allowed items when left out."""

    @field_validator("candidates")
    @classmethod
    def _unique_ids(cls, candidates: list[Candidate]) -> list[Candidate]:
        if len({c["id"] for c in candidates}) != len(candidates):
            raise ValueError("candidate ids must be unique")
        return candidates


@with_config(ConfigDict(use_attribute_docstrings=True))
class RankedItem(TypedDict):
    """One returned item, best first."""

    # A TypedDict, not a model: the rank path builds up to 1,000 of these per call and
    # serialises them as they are (RankResponse.served).
    id: str
    """The candidate's id."""
    score: float
    """The policy's score (the retrieval score in retrieval order)."""
    rank: int
    """Position, 1 = top."""


class RankResponse(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    decision_id: str
    """Id of this decision; send it back with POST /v1/feedback."""
    agent_type: str
    """The agent."""
    policy_version: str | None
    """The version that ranked; null for retrieval order (no production yet, or
    `use_rl_ranking` false)."""
    variant: Variant
    """Who served: `production`, `canary`, `experiment` or `retrieval` (shadow never serves)."""
    use_rl_ranking: bool
    """As asked."""
    ranking: list[RankedItem]
    """The ranking, best first."""

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
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        use_attribute_docstrings=True,
        # "At least one of" in JSON Schema's own terms, so the document says it exactly.
        json_schema_extra={
            "anyOf": [
                {"required": ["success"], "properties": {"success": {"type": "boolean"}}},
                {"required": ["reward"], "properties": {"reward": {"type": "number"}}},
                {"required": ["clicked_ids"], "properties": {"clicked_ids": {"minItems": 1}}},
            ],
            "examples": [{"decision_id": "<decision_id of a rank response>", "success": True}],
        },
    )
    decision_id: str = Field(min_length=1, max_length=512)
    """`decision_id` of the rank response (404 decision_not_found for an unknown one or
    another tenant's)."""
    success: bool | None = None
    """Whether the user was served well."""
    reward: float | None = Field(default=None, ge=0, le=1)
    """A graded outcome, 0..1."""
    clicked_ids: list[str] = Field(default_factory=list, max_length=MAX_CANDIDATES)
    """Ids of the ranked items the user clicked. Give at least one of `success`, `reward`
    (not null) or a non-empty `clicked_ids`."""

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackRequest:
        if self.success is None and self.reward is None and not self.clicked_ids:
            raise ValueError("give at least one of success, reward, clicked_ids")
        return self


class FeedbackAccepted(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    decision_id: str
    """The decision the feedback is for."""
    accepted: bool
    """True; repeated feedback for a decision is idempotent."""
