"""Issue 14 through the handlers on moto, on the local stack's seeded history (v1.2.4 in
production takes 8 context and 8 item features; rollback targets v1.2.2 takes 8/8, v1.1.1 8/4,
v1.0.1 4/4): a rollback must not break serving (decision 105), and status and list show every
version's feature schema."""

from __future__ import annotations

from typing import Any

import pytest

from infra.local.seed import seed_demo
from policyhub.api import container
from tests.support.api import Api, error_code

pytestmark = pytest.mark.integration
EIGHT_BY_EIGHT = {"context_dim": 8, "item_dim": 8}


@pytest.fixture
def demo(embedded_aws: None, monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setenv("POLICYHUB_POINTER_TTL_SECONDS", "0")
    container.reset()
    return Api(seed_demo(None).admin_key)


def _rank(demo: Api) -> Any:
    """What the clients of production v1.2.4 send: 8 context and 8 item features."""
    return demo.post(
        "/rank",
        {
            "context": {"features": [0.5] * 8},
            "candidates": [
                {"id": f"doc-{i}", "retrieval_score": 1 - i / 10, "features": [0.1 * i] * 8}
                for i in range(3)
            ],
        },
    )


def test_status_and_list_show_each_rollback_targets_feature_schema(demo: Api) -> None:
    status = demo.get("/policies/status").json()
    assert status["production"]["feature_schema"] == EIGHT_BY_EIGHT
    assert [(p["version"], p["feature_schema"]) for p in status["previous"]] == [
        ("v1.2.2", EIGHT_BY_EIGHT),
        ("v1.1.1", {"context_dim": 8, "item_dim": 4}),
        ("v1.0.1", {"context_dim": 4, "item_dim": 4}),
    ]
    items = demo.get("/policies", status="retired").json()["items"]
    assert {p["version"]: p["feature_schema"]["item_dim"] for p in items} == {
        "v1.2.2": 8,
        "v1.1.1": 4,
        "v1.0.1": 4,
    }


def test_a_rollback_to_another_feature_schema_is_refused_and_serving_goes_on(demo: Api) -> None:
    assert _rank(demo).status == 200
    r = demo.post(
        "/policies/rollback",
        {"version": "v1.0.1", "agent_type": "memory_manager", "reason": "regression"},
    )
    assert r.status == 409 and error_code(r) == "feature_schema_mismatch"
    message = r.json()["error"]["message"]
    assert "v1.0.1 expects context_dim 4, item_dim 4" in message
    assert "production v1.2.4 and its clients use 8/8" in message
    assert demo.get("/policies/status").json()["production"]["version"] == "v1.2.4"
    assert _rank(demo).json()["policy_version"] == "v1.2.4"
    # A target with production's schema is restored as before.
    r = demo.post("/policies/rollback", {"version": "v1.2.2", "agent_type": "memory_manager"})
    assert r.status == 200 and r.json()["version"] == "v1.2.2"
    assert _rank(demo).status == 200


def test_force_restores_it_audited_and_the_clients_must_change_too(demo: Api) -> None:
    r = demo.post(
        "/policies/rollback",
        {"version": "v1.0.1", "agent_type": "memory_manager", "reason": "old clients back",
         "force": True},
    )  # fmt: skip
    assert r.status == 200, r.body
    assert (r.json()["version"], r.json()["previous_version"]) == ("v1.0.1", "v1.2.4")
    event = demo.get("/policies/audit").json()["items"][0]
    assert (event["action"], event["to_version"]) == ("rollback", "v1.0.1")
    assert event["details"]["force"] is True
    assert event["details"]["feature_schema_change"] == {
        "from": EIGHT_BY_EIGHT,
        "to": {"context_dim": 4, "item_dim": 4},
    }
    # What the refusal protects against: clients still sending 8/8 now get 422s.
    r = _rank(demo)
    assert r.status == 422 and error_code(r) == "feature_dimension_mismatch"


def test_force_must_be_a_boolean(demo: Api) -> None:
    r = demo.post(
        "/policies/rollback", {"version": "v1.2.2", "agent_type": "memory_manager", "force": "yes"}
    )
    assert r.status == 422 and "body.force" in [d["field"] for d in r.json()["error"]["details"]]
