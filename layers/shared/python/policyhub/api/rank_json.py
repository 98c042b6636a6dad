"""The rank call's JSON: its body decoded by msgspec when valid (by pydantic when not), its
response written by orjson.

Decoding and validating 100 candidates x 23 features with pydantic took a third of the rank
handler; msgspec decodes the same body against the same rules in about half the time
(decision 122). `RankRequest` stays the contract: a body msgspec accepts becomes the same
`RankRequest` pydantic would have built (same values, same keys in the same order, same fields
set), and any body msgspec refuses, or that a rule below does not cover, is validated by
`RankRequest.model_validate_json` itself, so every 4xx keeps its message. The rules here may
only be as strict as the model's or stricter, never laxer (tests/unit/serving/
test_rank_json.py compares the two on generated bodies). The response is `RankResponse` as
`model_dump_json` writes it, byte for byte, in a fifth of the time.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
import orjson
from msgspec import UNSET, Meta, UnsetType
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from policyhub.domain.serving import (
    FLOAT32_MAX,
    MAX_CANDIDATES,
    MAX_FEATURES,
    MAX_TEXT_LENGTH,
    Candidate,
    Context,
    RankRequest,
    RankResponse,
)
from policyhub.domain.versions import AGENT_TYPE_PATTERN

_Features = Annotated[list[float], Meta(max_length=MAX_FEATURES)]
_Text = Annotated[str, Meta(min_length=1, max_length=MAX_TEXT_LENGTH)]


class _Context(msgspec.Struct, forbid_unknown_fields=True):
    features: _Features


class _Candidate(msgspec.Struct, forbid_unknown_fields=True):
    """A candidate without the optional keys: what nearly every request sends."""

    id: _Text
    retrieval_score: Annotated[float, Meta(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
    features: _Features


class _FlaggedCandidate(_Candidate, forbid_unknown_fields=True):
    source: Annotated[str, Meta(max_length=MAX_TEXT_LENGTH)] | UnsetType | None = UNSET
    blocked: bool | UnsetType = UNSET
    pinned: bool | UnsetType = UNSET


C = TypeVar("C", bound=_Candidate)


class _Body(msgspec.Struct, Generic[C], forbid_unknown_fields=True):
    context: _Context
    candidates: Annotated[list[C], Meta(min_length=1, max_length=MAX_CANDIDATES)]
    # UNSET, not the model's defaults: the request's `model_fields_set` names what was sent.
    agent_type: str | UnsetType = UNSET
    use_rl_ranking: bool | UnsetType = UNSET
    routing_key: _Text | UnsetType | None = UNSET
    top_k: Annotated[int, Meta(ge=1, le=MAX_CANDIDATES)] | UnsetType | None = UNSET


_decode_plain = msgspec.json.Decoder(_Body[_Candidate]).decode
_decode_flagged = msgspec.json.Decoder(_Body[_FlaggedCandidate]).decode
# The model's own validator for the one rule msgspec would read differently (its patterns are
# Python `re.search`, pydantic's are Rust regexes).
_agent_type = TypeAdapter(Annotated[str, Field(pattern=AGENT_TYPE_PATTERN)])


def parse_rank_request(raw: str | bytes) -> RankRequest:
    """The `RankRequest` of a JSON body; raises pydantic's `ValidationError` as the model does."""
    try:
        body: _Body[_Candidate] | _Body[_FlaggedCandidate] = _decode_plain(raw)
    except msgspec.MsgspecError:
        try:
            body = _decode_flagged(raw)
        except msgspec.MsgspecError:
            return RankRequest.model_validate_json(raw)
    request = _as_request(body)
    return RankRequest.model_validate_json(raw) if request is None else request


def _as_request(body: _Body[_Candidate] | _Body[_FlaggedCandidate]) -> RankRequest | None:
    """The request, or None when a rule msgspec did not check fails (the model then says why)."""
    cands = body.candidates
    if len({c.id for c in cands}) != len(cands):
        return None
    fields = {"context", "candidates"}
    values: dict[str, object] = {}
    for name in ("agent_type", "use_rl_ranking", "routing_key", "top_k"):
        value = getattr(body, name)
        if value is not UNSET:
            values[name] = value
            fields.add(name)
    agent_type = values.get("agent_type")
    if agent_type is not None:
        try:
            _agent_type.validate_python(agent_type)
        except ValidationError:
            return None
    candidates: list[Candidate] = (
        [_flagged(c) for c in cands]
        if isinstance(cands[0], _FlaggedCandidate)
        else [
            {"id": c.id, "retrieval_score": c.retrieval_score, "features": c.features}
            for c in cands
        ]
    )
    return RankRequest.model_construct(
        fields,
        context=Context.model_construct(features=body.context.features),
        candidates=candidates,
        **values,
    )


def _flagged(c: _Candidate) -> Candidate:
    """The candidate's keys as pydantic orders them (the TypedDict's), absent ones left out."""
    out: Candidate = {"id": c.id, "retrieval_score": c.retrieval_score, "features": c.features}
    assert isinstance(c, _FlaggedCandidate)
    if c.source is not UNSET:
        out["source"] = c.source
    if c.blocked is not UNSET:
        out["blocked"] = c.blocked
    if c.pinned is not UNSET:
        out["pinned"] = c.pinned
    return out


def read_body(model: type[BaseModel], raw: str | bytes) -> BaseModel:
    """A direct route's body: the rank request by `parse_rank_request`, others by the model."""
    return parse_rank_request(raw) if model is RankRequest else model.model_validate_json(raw)


def write_body(result: BaseModel) -> str:
    if type(result) is not RankResponse:
        return result.model_dump_json()
    return orjson.dumps(
        {
            "decision_id": result.decision_id,
            "agent_type": result.agent_type,
            "policy_version": result.policy_version,
            "variant": result.variant,
            "use_rl_ranking": result.use_rl_ranking,
            "ranking": result.ranking,
        }
    ).decode()
