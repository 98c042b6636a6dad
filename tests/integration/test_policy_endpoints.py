"""The registry endpoints through API Gateway events, the authorizer and the handlers on moto."""

from __future__ import annotations

import base64
import json

import pytest

from policyhub.api.routes import ROUTES
from policyhub.domain.access import Role, Tier
from policyhub.ml.onnx_models import random_linear_policy
from tests.support.api import Api, error_code, new_key

pytestmark = pytest.mark.integration


def _register(api: Api, seed: int = 0, context_dim: int = 2, item_dim: int = 3) -> str:
    art = base64.b64encode(random_linear_policy(context_dim + item_dim + 1, seed=seed)).decode()
    r = api.post(
        "/policies",
        {
            "artifact_base64": art,
            "feature_schema": {"context_dim": context_dim, "item_dim": item_dim},
        },
    )
    assert r.status == 201, r.body
    version: str = r.json()["version"]
    return version


def test_status_of_an_agent_without_versions(admin: Api) -> None:
    r = admin.get("/policies/status")
    assert r.status == 200 and r.headers["x-request-id"]
    assert r.json() == {
        "agent_type": "memory_manager",
        "production": None,
        "previous": [],
        "rollout": None,
        "experiment": None,
        "total_versions": 0,
    }


def test_register_promote_and_status_show_the_production_version(admin: Api) -> None:
    v1, v2 = _register(admin, 1), _register(admin, 2)
    assert (v1, v2) == ("v1.0.0", "v1.0.1")
    r = admin.post("/policies/promote", {"version": v1, "strategy": "immediate"})
    assert r.status == 200 and r.json()["previous_version"] is None
    r = admin.post(
        "/policies/promote", {"version": v2, "strategy": "immediate", "reason": "better"}
    )
    assert r.json()["previous_version"] == v1
    status = admin.get("/policies/status").json()
    assert status["production"]["version"] == v2
    assert [p["version"] for p in status["previous"]] == [v1]
    assert status["total_versions"] == 2
    got = admin.get(f"/policies/{v1}").json()
    assert got["status"] == "retired" and got["artifact"]["size_bytes"] > 0


def test_registered_version_has_a_verified_artifact_in_s3(admin: Api) -> None:
    from policyhub.api import container

    v = _register(admin, 5)
    body = admin.get(f"/policies/{v}").json()
    store = container.registry()._artifacts
    data = store.get("acme", "memory_manager", body["artifact"]["sha256"], 1 << 20)
    assert len(data) == body["artifact"]["size_bytes"]


def test_list_pages_newest_first_with_cursors(admin: Api) -> None:
    for i in range(5):
        _register(admin, i)
    seen: list[str] = []
    cursor = None
    while True:
        page = admin.get("/policies", limit=2, cursor=cursor).json()
        seen += [p["version"] for p in page["items"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert seen == ["v1.0.4", "v1.0.3", "v1.0.2", "v1.0.1", "v1.0.0"]


def test_list_filters_by_status_across_pages(admin: Api) -> None:
    vs = [_register(admin, i) for i in range(5)]
    admin.post("/policies/promote", {"version": vs[2], "strategy": "immediate"})
    page = admin.get("/policies", status="candidate", limit=3).json()
    assert [p["version"] for p in page["items"]] == ["v1.0.4", "v1.0.3", "v1.0.1"]
    rest = admin.get("/policies", status="candidate", limit=3, cursor=page["next_cursor"]).json()
    assert [p["version"] for p in rest["items"]] == ["v1.0.0"] and not rest["has_more"]


def test_another_tenant_sees_nothing_and_cannot_use_our_cursor(admin: Api) -> None:
    for i in range(3):
        _register(admin, i)
    other = Api(new_key("globex"))
    assert other.get("/policies").json()["items"] == []
    assert other.get("/policies/v1.0.0").status == 404
    assert other.get("/policies/status").json()["total_versions"] == 0
    # Only globex's own key creation: none of acme's registrations.
    assert [e["action"] for e in other.get("/policies/audit").json()["items"]] == ["key_create"]
    cursor = admin.get("/policies", limit=1).json()["next_cursor"]
    r = other.get("/policies", limit=1, cursor=cursor)
    assert r.status == 400 and error_code(r) == "invalid_cursor"
    r = other.post("/policies/rollback", {"version": "v1.0.0", "agent_type": "memory_manager"})
    assert r.status == 404


def test_register_rejects_bad_artifacts_with_422(admin: Api) -> None:
    bad = base64.b64encode(b"\x08\x01garbage").decode()
    r = admin.post(
        "/policies", {"artifact_base64": bad, "feature_schema": {"context_dim": 2, "item_dim": 3}}
    )
    assert r.status == 422 and error_code(r) == "invalid_artifact"
    wrong_width = base64.b64encode(random_linear_policy(9)).decode()
    r = admin.post(
        "/policies",
        {"artifact_base64": wrong_width, "feature_schema": {"context_dim": 2, "item_dim": 3}},
    )
    assert r.status == 422
    r = admin.post(
        "/policies", {"artifact_base64": "***", "feature_schema": {"context_dim": 2, "item_dim": 3}}
    )
    assert r.status == 422 and r.json()["error"]["details"][0]["field"] == "body.artifact_base64"
    assert admin.get("/policies/status").json()["total_versions"] == 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, "body"),
        (b"[]", 422, None),
        (json.dumps({"version": "1.0"}).encode(), 422, "body.version"),
        (
            json.dumps({"version": "v1.0.0", "agent_type": "Bad-Agent"}).encode(),
            422,
            "body.agent_type",
        ),
        (
            json.dumps({"version": "v1.0.0", "agent_type": "memory_manager", "x": 1}).encode(),
            422,
            "body.x",
        ),
    ],
)
def test_bad_rollback_bodies_get_clear_4xx(
    admin: Api, body: bytes, status: int, field: str | None
) -> None:
    r = admin.post("/policies/rollback", raw=body)
    assert r.status == status
    err = r.json()["error"]
    assert err["request_id"] == r.headers["x-request-id"] and err["message"]
    if field:
        assert field in [d["field"] for d in err["details"]]


def test_bad_query_parameters_are_422(admin: Api) -> None:
    assert admin.get("/policies", limit=0).status == 422
    assert admin.get("/policies", limit=101).status == 422
    assert admin.get("/policies", status="live").status == 422
    assert admin.get("/policies/status", agent_type="NOPE").status == 422
    assert admin.get("/policies/not-a-version").status == 422


def test_rollback_to_a_version_that_never_served_is_409(admin: Api) -> None:
    v1, v2 = _register(admin, 1), _register(admin, 2)
    admin.post("/policies/promote", {"version": v1, "strategy": "immediate"})
    r = admin.post("/policies/rollback", {"version": v2, "agent_type": "memory_manager"})
    assert r.status == 409 and error_code(r) == "not_rollbackable"
    r = admin.post("/policies/rollback", {"version": v1, "agent_type": "memory_manager"})
    assert r.status == 409 and error_code(r) == "already_production"


def test_emergency_rollback_restores_and_audits(admin: Api) -> None:
    v1, v2 = _register(admin, 1), _register(admin, 2)
    admin.post("/policies/promote", {"version": v1, "strategy": "immediate"})
    admin.post("/policies/promote", {"version": v2, "strategy": "immediate"})
    r = admin.post(
        "/policies/rollback",
        {
            "version": v1,
            "agent_type": "memory_manager",
            "reason": "regression in retrieval quality",
        },
    )
    assert r.status == 200
    assert r.json()["version"] == v1 and r.json()["previous_version"] == v2
    events = admin.get("/policies/audit").json()["items"]
    assert [e["action"] for e in events[:3]] == ["rollback", "promote", "promote"]
    assert events[0]["reason"] == "regression in retrieval quality"
    assert events[0]["from_version"] == v2 and events[0]["to_version"] == v1


@pytest.mark.parametrize(
    ("tier", "role", "read", "write"),
    [
        (Tier.FREE, Role.ADMIN, 403, 403),
        (Tier.PRO, Role.MEMBER, 200, 403),
        (Tier.PRO, Role.ADMIN, 200, 409),
    ],
)
def test_tiers_and_roles_are_enforced_per_route(
    embedded_aws: None, tier: Tier, role: Role, read: int, write: int
) -> None:
    api = Api(new_key("acme", tier, role))
    assert api.get("/policies/status").status == read
    r = api.post("/policies/rollback", {"version": "v1.0.0", "agent_type": "memory_manager"})
    assert r.status in ({write} if write != 409 else {404})
    if r.status == 403:
        assert error_code(r) == "forbidden"


@pytest.mark.parametrize("key", [None, "nonsense", "ph_live_0123456789abcdef_" + "x" * 43])
def test_missing_or_unknown_keys_get_401_in_the_envelope(
    embedded_aws: None, key: str | None
) -> None:
    r = Api(key).get("/policies/status")
    assert r.status == 401 and error_code(r) == "unauthorized"
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_revoked_key_gets_401(embedded_aws: None) -> None:
    from policyhub.api import container

    key, plaintext = container.keys().create("acme", Tier.PRO, Role.ADMIN)
    container.keys().revoke(key.key_id)
    assert Api(plaintext).get("/policies/status").status == 401


def test_health_and_openapi_need_no_key_and_cover_every_route(embedded_aws: None) -> None:
    anon = Api(None)
    assert anon.get("/health").json()["status"] == "ok"
    doc = anon.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for r in ROUTES:
        assert r.method.lower() in doc["paths"][r.path], r.path


def test_oversized_body_is_413(admin: Api) -> None:
    r = admin.post("/policies/rollback", raw=b" " * (65 * 1024))
    assert r.status == 413 and error_code(r) == "payload_too_large"


def test_unknown_route_is_404_in_the_envelope(admin: Api) -> None:
    r = admin.get("/nothing-here")
    assert r.status == 404 and error_code(r) == "not_found"
