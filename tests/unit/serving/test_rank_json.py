"""The rank body decoded by msgspec is the request pydantic validates, and the response orjson
writes is the one pydantic writes (api/rank_json.py, decision 122)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from policyhub.api.rank_json import parse_rank_request, write_body
from policyhub.domain.serving import (
    FLOAT32_MAX,
    MAX_CANDIDATES,
    MAX_FEATURES,
    MAX_TEXT_LENGTH,
    RankRequest,
    RankResponse,
)

Outcome = tuple[str, Any]


def outcome(parse: Any, raw: str) -> Outcome:
    """Everything a caller can see of a parse: the values, their types (as JSON bytes: -0.0 and
    0.0, 1 and 1.0 differ), the fields set and each candidate's key order; or the errors."""
    try:
        req = parse(raw)
    except ValidationError as exc:
        # What the 4xx is built from (the inputs echoed back are not compared: NaN != NaN).
        return "error", [(e["type"], e["loc"], e["msg"]) for e in exc.errors()]
    return "ok", (
        orjson.dumps(req.model_dump()),
        req.model_fields_set,
        req.context.model_fields_set,
        [list(c) for c in req.candidates],
    )


def assert_same(raw: str) -> None:
    assert outcome(parse_rank_request, raw) == outcome(RankRequest.model_validate_json, raw)


# ---- generated bodies: valid ones and near misses, every field, as JSON text -----------------
ordinary_numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.from_regex(r"\A-?(0|[1-9][0-9]{0,20})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,2})?\Z"),
)
EDGE_NUMBERS = ["3.4028234663852886e38", "-3.4028234663852886e38", "3.4028234663852887e38",
                "3.5e38", "-3.5e38", "1e400", "-1e400", "1e-400", "-0", "-0.0", "5e-324", "NaN",
                "Infinity", "-Infinity", "18446744073709551616", "9007199254740993", "1E+2"]
json_numbers = st.integers(0, 24).flatmap(
    lambda i: st.sampled_from(EDGE_NUMBERS) if i == 0 else ordinary_numbers
)
wrong_values = st.sampled_from(["true", "false", "null", '"1.5"', "[]", "{}", "[1]"])
texts = st.one_of(
    st.text(max_size=20),
    st.integers(0, MAX_TEXT_LENGTH + 2).map(lambda n: "x" * n),
    st.integers(MAX_TEXT_LENGTH - 1, MAX_TEXT_LENGTH + 1).map(lambda n: "\U0001f600" * n),
)
json_texts = st.tuples(texts, st.booleans()).map(lambda t: json.dumps(t[0], ensure_ascii=t[1]))


def maybe_wrong(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Mostly the field's own kind of value (with its edge cases), rarely another JSON type: a
    body must often be entirely valid for the decoder's acceptance to be put to the test."""
    return st.integers(0, 24).flatmap(lambda i: wrong_values if i == 0 else valid)


def rarely(n: int) -> st.SearchStrategy[bool]:
    return st.integers(0, n - 1).map(lambda i: i == 0)


def array(items: st.SearchStrategy[str], max_size: int = 6) -> st.SearchStrategy[str]:
    return st.lists(items, max_size=max_size).map(lambda xs: "[" + ",".join(xs) + "]")


@st.composite
def json_object(draw: st.DrawFn, required: dict[str, st.SearchStrategy[str]],
                optional: dict[str, st.SearchStrategy[str]]) -> str:
    members = {k: draw(v) for k, v in required.items() if not draw(rarely(25))}
    members |= {k: draw(v) for k, v in optional.items() if draw(st.booleans())}
    if draw(rarely(25)):
        members[draw(st.sampled_from(["extra", "Id", "features "]))] = "1"
    pairs = draw(st.permutations(list(members.items())))
    repeat: bool = draw(rarely(25))
    if pairs and repeat:
        pairs.append((pairs[0][0], draw(maybe_wrong(json_numbers))))  # a repeated key
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}"


features = maybe_wrong(array(maybe_wrong(json_numbers)))
candidates = json_object(
    {"id": maybe_wrong(st.one_of(st.sampled_from(['"a"', '"b"', '"c"']), json_texts)),
     "retrieval_score": maybe_wrong(json_numbers),
     "features": features},
    {"source": st.one_of(json_texts, st.just("null"), wrong_values),
     "blocked": maybe_wrong(st.sampled_from(["true", "false"])),
     "pinned": maybe_wrong(st.sampled_from(["true", "false"]))},
)
bodies = json_object(
    {"context": maybe_wrong(json_object({"features": features}, {})),
     "candidates": maybe_wrong(array(candidates, max_size=4))},
    {"agent_type": maybe_wrong(st.one_of(
        json_texts,
        st.sampled_from(['"memory_manager"', '"abc\\n"', '"Abc"', '"a1_"', '"' + "a" * 63 + '"',
                         '"' + "a" * 64 + '"']))),
     "use_rl_ranking": maybe_wrong(st.sampled_from(["true", "false"])),
     "routing_key": st.one_of(json_texts, st.just("null"), wrong_values),
     "top_k": st.one_of(st.integers(-1, MAX_CANDIDATES + 1).map(str), st.just("null"),
                        st.just("1.0"), wrong_values)},
)


@settings(max_examples=1500, deadline=None)
@given(bodies, st.sampled_from(["", " ", "\n\t"]))
def test_a_generated_body_gets_the_same_request_or_the_same_errors(body: str, pad: str) -> None:
    assert_same(pad + body + pad)


@settings(max_examples=300, deadline=None)
@given(bodies, st.data())
def test_a_body_with_one_byte_changed_gets_the_same_outcome(body: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(body)))
    edit = data.draw(st.sampled_from(["", "x", ",", "}", "]", '"', "\\", "\x00", "\ufeff", "0"]))
    assert_same(body[:at] + edit + body[at + 1 :])


def plain_body(n_candidates: int = 2, n_features: int = 3, **extra: Any) -> dict[str, Any]:
    return {
        "context": {"features": [0.5] * n_features},
        "candidates": [
            {"id": f"c{i}", "retrieval_score": 1.0 - i / 1000, "features": [0.25] * n_features}
            for i in range(n_candidates)
        ],
        **extra,
    }


EDGE_VALUES = [
    *EDGE_NUMBERS, "0", "1", "-1", "1000", "1001", "1.0", "1.5", "true", "false", "null", '""',
    '"a"', '"1.5"', '"Abc"', '"abc\\n"', json.dumps("x" * MAX_TEXT_LENGTH),
    json.dumps("x" * (MAX_TEXT_LENGTH + 1)), json.dumps("\U0001f600" * MAX_TEXT_LENGTH),
    "[]", "[1]", "[true]", "[null]", '["1"]', "{}", '{"features":[1]}',
]


def base_body() -> dict[str, Any]:
    return {
        "agent_type": "memory_manager",
        "context": {"features": [0.5, -1]},
        "candidates": [
            {"id": "a", "retrieval_score": 0.5, "features": [1.5, 2],
             "source": "s", "blocked": False, "pinned": True},
            {"id": "b", "retrieval_score": 0.25, "features": [0.0, 1e-3]},
        ],
        "use_rl_ranking": True,
        "routing_key": "user",
        "top_k": 2,
    }


PLACES: list[tuple[str | int, ...]] = [
    ("agent_type",), ("context",), ("context", "features"), ("context", "features", 0),
    ("candidates",), ("candidates", 0), ("candidates", 1, "id"), ("candidates", 0, "id"),
    ("candidates", 1, "retrieval_score"), ("candidates", 1, "features"),
    ("candidates", 1, "features", 1), ("candidates", 0, "source"), ("candidates", 0, "blocked"),
    ("candidates", 0, "pinned"), ("candidates", 1, "pinned"), ("use_rl_ranking",),
    ("routing_key",), ("top_k",), ("extra",), ("candidates", 1, "extra"), ("context", "extra"),
]
MISSING = object()


def with_value(path: tuple[str | int, ...], value: Any) -> str:
    """The base body with one place set to `value` (JSON text) or removed (MISSING)."""
    body = base_body()
    *parents, last = path
    target: Any = body
    for key in parents:
        target = target[key]
    if value is MISSING:
        if isinstance(last, int) or last in target:
            del target[last]
    else:
        target[last] = f"@@{len(value)}@@"
        return json.dumps(body).replace(json.dumps(f"@@{len(value)}@@"), value)
    return json.dumps(body)


@pytest.mark.parametrize("path", PLACES, ids=[".".join(map(str, p)) for p in PLACES])
def test_one_changed_field_gets_the_same_outcome(path: tuple[str | int, ...]) -> None:
    assert_same(with_value(path, MISSING))
    for value in EDGE_VALUES:
        assert_same(with_value(path, value))



@pytest.mark.parametrize(
    "body",
    [
        plain_body(MAX_CANDIDATES),
        plain_body(MAX_CANDIDATES + 1),
        plain_body(n_features=MAX_FEATURES),
        plain_body(n_features=MAX_FEATURES + 1),
        plain_body(candidates=[]),
        plain_body(candidates=[{"id": "a", "retrieval_score": FLOAT32_MAX, "features": []}]),
        plain_body(candidates=[{"id": "a", "retrieval_score": 1, "features": [1],
                                "source": None, "pinned": True}]),
        plain_body(candidates=[{"id": "a", "retrieval_score": 1, "features": [1]}] * 2),
        plain_body(agent_type="Memory", top_k=3, routing_key="u", use_rl_ranking=False),
    ],
    ids=["most candidates", "too many candidates", "most features", "too many features",
         "no candidates", "largest score", "flags", "repeated id", "every field"],
)
def test_the_limits_are_the_models(body: dict[str, Any]) -> None:
    assert_same(json.dumps(body))


def test_valid_bodies_are_decoded_without_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The differential tests above would pass if every body went to pydantic; these do not."""

    def refuse(raw: object) -> None:
        raise AssertionError("validated by the model")

    expected = [RankRequest.model_validate_json(json.dumps(b)) for b in (
        plain_body(), plain_body(candidates=[{"id": "a", "retrieval_score": 1, "features": [1],
                                              "blocked": False, "source": "s"}],
                                 agent_type="a1", top_k=1, routing_key=None))]
    monkeypatch.setattr(RankRequest, "model_validate_json", refuse)
    got = [parse_rank_request(json.dumps(b)) for b in (
        plain_body(), plain_body(candidates=[{"id": "a", "retrieval_score": 1, "features": [1],
                                              "blocked": False, "source": "s"}],
                                 agent_type="a1", top_k=1, routing_key=None))]
    assert got == expected
    assert [r.model_fields_set for r in got] == [r.model_fields_set for r in expected]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.text(min_size=1), st.floats(allow_nan=False, allow_infinity=False)),
             max_size=5),
    st.text(),
    st.one_of(st.none(), st.text()),
    st.sampled_from(["production", "canary", "experiment", "retrieval"]),
    st.booleans(),
)
def test_the_response_is_written_as_pydantic_writes_it(
    items: list[tuple[str, float]], decision_id: str, version: str | None, variant: Any,
    rl: bool,
) -> None:
    response = RankResponse.served(
        decision_id, "memory_manager", version, variant, rl,
        [{"id": i, "score": s, "rank": r} for r, (i, s) in enumerate(items, 1)],
    )
    assert write_body(response) == response.model_dump_json()
