"""Hostile input through the gateway and the handlers: always a clear 4xx, never a 5xx."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.local.gateway import GatewayResponse, invoke
from policyhub.api.routes import ROUTES, Route, route
from policyhub.domain.access import Role, Tier
from policyhub.domain.serving import MAX_CANDIDATES
from policyhub.signing import b64, unb64
from tests.reliability import tally
from tests.reliability.support import ProbeApi, World, rank_body, scan_table
from tests.support.api import new_key

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("reliability-hostile")]
EXAMPLES = tally.sized(25, 300)
_HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
BODY_ROUTES = [r for r in ROUTES if r.method in {"POST", "PUT", "PATCH"}]


def _code(r: GatewayResponse) -> str:
    code: str = r.json()["error"]["code"]
    return code


def _body_path(name: str) -> str:
    return route(name).path.removeprefix("/v1").replace("{rollout_id}", "does-not-exist")


# ---- bodies that are not JSON objects of the right shape ------------------------------------
NOT_UTF8 = b"\xff\xfe{\x00"
MALFORMED = [b"{", b'{"a": }', b"\x00", b"nul", b'{"a": 1}}', b"[" * 5000, NOT_UTF8]
WRONG_TYPE = [b"null", b"[]", b"1", b'"text"', b"true", b'{"a": {"b": {"c": []}}}']


@pytest.mark.parametrize("r", BODY_ROUTES, ids=lambda r: r.name)
def test_malformed_and_wrong_typed_bodies_get_400_or_422(world: World, r: Route) -> None:
    for raw in [*MALFORMED, *WRONG_TYPE]:
        got = _raw(world, r.method, _body_path(r.name), raw)
        assert got.status in (400, 422), (r.name, raw[:20], got.status, got.body[:300])
        assert _code(got) in {"malformed_json", "validation_error"}
        assert got.json()["error"]["request_id"]


def _raw(world: World, method: str, path: str, raw: bytes) -> GatewayResponse:
    response = invoke(method, f"/v1{path}", headers=world.admin._headers(), body=raw)
    tally.observe(response.status)
    return response


def test_deeply_nested_json_is_refused_cleanly(world: World) -> None:
    for depth in (1_000, 20_000):
        nested = b'{"context": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
        for name in ("rank", "promote_policy", "put_constraints"):
            r = _raw(world, route(name).method, _body_path(name), nested)
            assert r.status in (400, 413, 422), (name, depth, r.status, r.body[:200])


@given(body=st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=30,
))
@_HYPOTHESIS
def test_arbitrary_json_to_every_write_route_is_never_a_5xx(world: World, body: Any) -> None:
    for r in BODY_ROUTES:
        got = _raw(world, r.method, _body_path(r.name), json.dumps(body).encode())
        assert got.status < 500, (r.name, body, got.body[:300])


# ---- cursors and decision ids ---------------------------------------------------------------
def _first_cursor(world: World, path: str) -> str:
    page = world.admin.get(path, limit=1).json()
    cursor: str = page["next_cursor"]
    assert cursor
    return cursor


def test_tampered_cursors_are_400_and_never_cross_a_listing_or_tenant(world: World) -> None:
    versions = _first_cursor(world, "/policies")
    audit = _first_cursor(world, "/policies/audit")
    body, _, sig = versions.partition(".")
    payload = json.loads(unb64(body))
    forged = []
    for change in ({"t": "globex"}, {"k": "audit"}, {"p": {"pk": "T#globex#A#x", "sk": "V"}}):
        forged.append(b64(json.dumps({**payload, **change}).encode()) + "." + sig)
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    cases = [f"{body}.{flipped}", body, f"{body}.", f".{sig}", "x" * 500, "é.ü", "%00", *forged]
    for cursor in cases:
        r = world.admin.get("/policies", limit=1, cursor=cursor)
        assert (r.status, _code(r)) == (400, "invalid_cursor"), (cursor, r.body[:200])
    r = world.admin.get("/policies", limit=1, cursor=audit)
    assert (r.status, _code(r)) == (400, "invalid_cursor"), "an audit cursor is not a versions one"
    other = ProbeApi(new_key("globex"))
    assert other.get("/policies", limit=1, cursor=versions).status == 400
    assert world.admin.get("/policies", limit=1, cursor="c" * 5000).status == 422


@given(cursor=st.text(min_size=1, max_size=300))
@_HYPOTHESIS
def test_random_cursors_are_refused_without_a_5xx(world: World, cursor: str) -> None:
    for path in ("/policies", "/policies/audit"):
        r = world.admin.get(path, cursor=cursor)
        assert r.status in (400, 422), (path, cursor, r.body[:200])


@given(decision=st.text(max_size=600) | st.from_regex(r"[0-9a-f]{32}\.[A-Za-z0-9_-]{0,80}\."
                                                       r"[A-Za-z0-9_-]{22}", fullmatch=True))
@_HYPOTHESIS
def test_forged_decision_ids_are_unknown_never_a_5xx(world: World, decision: str) -> None:
    r = world.admin.post("/feedback", {"decision_id": decision, "success": True})
    assert r.status in (404, 422), (decision, r.body[:200])


def test_a_decision_id_with_a_swapped_meta_is_unknown(world: World) -> None:
    uuid, meta, mac = world.decision_id.split(".")
    fake_meta = b64(json.dumps(["memory_manager", "canary", "v9.9.9", "r", None]).encode())
    for forged in (f"{uuid}.{fake_meta}.{mac}", f"{uuid}.{meta}.{mac[::-1]}", f"{uuid}..{mac}"):
        r = world.admin.post("/feedback", {"decision_id": forged, "success": True})
        assert (r.status, _code(r)) == (404, "decision_not_found")


# ---- size limits ----------------------------------------------------------------------------
@pytest.mark.parametrize("r", BODY_ROUTES, ids=lambda r: r.name)
def test_a_body_over_the_routes_limit_is_413(world: World, r: Route) -> None:
    raw = b'{"notes": "' + b"x" * r.max_body_bytes + b'"}'
    got = _raw(world, r.method, _body_path(r.name), raw)
    assert (got.status, _code(got)) == (413, "payload_too_large")


def test_a_body_over_api_gateways_10_mb_is_413_before_any_handler(world: World) -> None:
    got = _raw(world, "POST", "/policies", b"x" * (10 * 1024 * 1024 + 1))
    assert (got.status, _code(got)) == (413, "payload_too_large")


def test_a_thousand_candidates_rank_and_one_more_is_422(world: World) -> None:
    body = rank_body(MAX_CANDIDATES)
    r = world.admin.post("/rank", body)
    assert r.status == 200 and len(r.json()["ranking"]) == MAX_CANDIDATES
    r = world.admin.post("/rank", rank_body(MAX_CANDIDATES + 1))
    assert (r.status, _code(r)) == (422, "validation_error")
    wide = rank_body(MAX_CANDIDATES)
    for c in wide["candidates"]:
        c["features"] = [0.5] * 600
    assert world.admin.post("/rank", wide).status == 413, "about 3 MB of features"


def test_scores_beyond_float32_are_422_not_500(world: World) -> None:
    fresh = ProbeApi(new_key("no-policy-yet", Tier.FREE, Role.MEMBER))
    for api in (world.admin, fresh):
        body = rank_body(2)
        body["candidates"][0]["retrieval_score"] = 1e300
        body["candidates"][1]["retrieval_score"] = -1e300
        r = api.post("/rank", body)
        assert (r.status, _code(r)) == (422, "validation_error"), r.body[:300]


# ---- unicode --------------------------------------------------------------------------------
UNICODE = ["δοκιμή", "测试", "🦄‍🔥", "\u202eRTL", "a\u0000b", "\ud7ff", "ǅ" * 200]


def test_unicode_ids_and_reasons_round_trip_and_agent_names_stay_ascii(world: World) -> None:
    body = rank_body(len(UNICODE))
    for c, text in zip(body["candidates"], UNICODE, strict=True):
        c["id"] = text
    r = world.admin.post("/rank", body)
    assert r.status == 200
    assert sorted(i["id"] for i in r.json()["ranking"]) == sorted(UNICODE)
    for agent in ("Ägent", "agent-1", "测试", "a" * 64, ""):
        r = world.admin.get("/policies/status", agent_type=agent)
        assert (r.status, _code(r)) == (422, "validation_error"), agent
    r = world.admin.post(
        "/policies/promote", {"version": "v1.0.3", "strategy": "immediate", "reason": "🦄\u0000é"}
    )
    assert r.status in (200, 409)
    r = world.admin.post("/policies/promote", {"version": "v\uff11.0.3", "strategy": "immediate"})
    assert r.status == 422, "full-width digits are not a version"


# ---- secrets --------------------------------------------------------------------------------
def test_api_keys_are_never_stored_or_logged_in_plaintext(
    world: World, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from aws_lambda_powertools import Logger

    from policyhub.api import container
    from policyhub.settings import settings
    from tests.reliability.support import bucket_objects

    caplog.set_level(logging.DEBUG)
    api_logger = Logger(service="policyhub")
    api_logger.setLevel("DEBUG")
    try:
        plaintexts = [container.keys().create("acme", t, r)[1] for t in Tier for r in Role]
        for key in plaintexts:
            api = ProbeApi(key)
            api.post("/rank", rank_body())
            api.get("/policies/status")
            api.post("/policies/promote", {"version": "v9.9.9", "strategy": "immediate"})
            api.post("/feedback", raw=NOT_UTF8)
            container.keys().revoke(key.split("_")[2])
            assert api.get("/policies/status").status == 401
    finally:
        api_logger.setLevel("WARNING")
    container.log_sink().flush()  # type: ignore[union-attr]
    secrets = [k[len("ph_live_") + 17 :] for k in plaintexts]  # ph_live_<16 hex>_<secret>
    assert all(len(s) == 43 for s in secrets)
    stored = json.dumps(scan_table())
    objects = b"".join(bucket_objects(settings().interaction_bucket).values())
    artifacts = b"".join(bucket_objects(settings().artifact_bucket).values())
    out = capsys.readouterr()
    logs = caplog.text + out.out + out.err
    for plain, secret in zip(plaintexts, secrets, strict=True):
        for where, text in (("table", stored), ("logs", logs)):
            assert secret not in text, f"the secret of a key is in the {where}"
            assert plain not in text
        assert secret.encode() not in objects and secret.encode() not in artifacts
