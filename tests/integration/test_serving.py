"""POST /v1/rank, /v1/feedback and the constraints through the handlers on moto."""

from __future__ import annotations

import time
from typing import Any

import pytest

from infra.local.seed import CURRENT_SCHEMA, seed_demo
from policyhub.api import container
from policyhub.domain.access import Role, Tier
from policyhub.domain.interaction_records import DECISION_FIELDS, FEEDBACK_FIELDS
from policyhub.settings import settings
from tests.support.api import Api, error_code, new_key
from tests.support.interactions import logged

pytestmark = pytest.mark.integration
CTX, ITEM = CURRENT_SCHEMA.context_dim, CURRENT_SCHEMA.item_dim


def rank_body(n: int = 10, **extra: Any) -> dict[str, Any]:
    return {
        "context": {"features": [0.1 * i for i in range(CTX)]},
        "candidates": [
            {
                "id": f"doc-{i}",
                "retrieval_score": 1 - i / (2 * n),
                "features": [((i * 7 + j) % 5) / 5 for j in range(ITEM)],
                "source": f"s{i % 3}",
            }
            for i in range(n)
        ],
        **extra,
    }


@pytest.fixture
def demo(embedded_aws: None) -> Api:
    return Api(seed_demo(None).admin_key)


def test_rank_serves_production_and_logs_a_decision_feedback_joins(demo: Api) -> None:
    r = demo.post("/rank", rank_body(routing_key="user-1"))
    assert r.status == 200, r.body
    body = r.json()
    assert (body["variant"], body["policy_version"], body["use_rl_ranking"]) == (
        "production",
        "v1.2.4",
        True,
    )
    assert sorted(i["id"] for i in body["ranking"]) == sorted(f"doc-{i}" for i in range(10))
    assert [i["rank"] for i in body["ranking"]] == list(range(1, 11))
    fb = demo.post(
        "/feedback",
        {
            "decision_id": body["decision_id"],
            "success": True,
            "clicked_ids": [body["ranking"][0]["id"]],
        },
    )
    assert fb.status == 202
    records = logged("demo")
    decision = next(r for r in records if r["type"] == "decision")
    feedback = next(r for r in records if r["type"] == "feedback")
    assert decision["decision_id"] == feedback["decision_id"] == body["decision_id"]
    assert set(decision) == DECISION_FIELDS and set(feedback) == FEEDBACK_FIELDS
    assert decision["ranking"] == [i["id"] for i in body["ranking"]]
    assert 0 < decision["propensity"] <= 1 and decision["chosen_id"] == decision["ranking"][0]
    assert len(decision["candidates"]) == 10 and len(decision["context"]) == CTX
    assert feedback["success"] is True and feedback["variant"] == "production"


def test_repeated_feedback_is_recorded_once(demo: Api) -> None:
    d = demo.post("/rank", rank_body()).json()["decision_id"]
    for _ in range(3):
        assert demo.post("/feedback", {"decision_id": d, "reward": 0.5}).status == 202
    assert sum(r["type"] == "feedback" for r in logged("demo")) == 1


def test_feedback_for_another_tenants_or_a_forged_decision_is_404(demo: Api) -> None:
    d = demo.post("/rank", rank_body()).json()["decision_id"]
    other = Api(new_key("globex", Tier.FREE, Role.MEMBER))
    r = other.post("/feedback", {"decision_id": d, "success": True})
    assert r.status == 404 and error_code(r) == "decision_not_found"
    uuid, meta, mac = d.split(".")
    non_ascii_mac = f"{uuid}.{meta}.{mac[:-1]}\u00e9"
    for forged in (
        f"{uuid[::-1]}.{meta}.{mac}", f"{uuid}.{meta}x.{mac}", "nope", d + ".x", non_ascii_mac,
    ):  # fmt: skip
        assert demo.post("/feedback", {"decision_id": forged, "success": True}).status == 404


def test_opting_out_returns_retrieval_order_with_constraints(demo: Api) -> None:
    body = rank_body(use_rl_ranking=False)
    body["candidates"][0]["blocked"] = True
    r = demo.post("/rank", body).json()
    assert (r["variant"], r["policy_version"], r["use_rl_ranking"]) == ("retrieval", None, False)
    assert [i["id"] for i in r["ranking"]] == [f"doc-{i}" for i in range(1, 10)]


def test_without_a_production_policy_ranking_explores_retrieval_scores(embedded_aws: None) -> None:
    api = Api(new_key("fresh", Tier.FREE, Role.MEMBER))
    tops = {api.post("/rank", rank_body()).json()["ranking"][0]["id"] for _ in range(40)}
    assert len(tops) > 1, "exploration puts other items on top sometimes"
    decisions = [r for r in logged("fresh") if r["type"] == "decision"]
    assert all(d["policy_version"] is None and d["variant"] == "retrieval" for d in decisions)
    assert {round(d["propensity"], 6) for d in decisions} != {1.0}


def test_constraints_are_enforced_after_the_policy_and_audited(demo: Api) -> None:
    r = demo.post("/policies/rollback", {"version": "x"})  # warm the route table path
    assert r.status == 422
    put = demo.post_json(
        "PUT", "/policies/constraints", {"min_retrieval_score": 0.7, "max_items_per_source": 1}
    )
    assert put.status == 200, put.body
    assert demo.get("/policies/constraints").json()["max_items_per_source"] == 1
    ranking = demo.post("/rank", rank_body()).json()["ranking"]
    sources = [int(i["id"].split("-")[1]) % 3 for i in ranking]
    assert len(sources) == len(set(sources)) <= 3
    assert all(1 - int(i["id"].split("-")[1]) / 20 >= 0.7 for i in ranking)
    assert demo.get("/policies/audit").json()["items"][0]["action"] == "constraints_update"
    member = Api(new_key("demo", Tier.PRO, Role.MEMBER))
    assert member.post_json("PUT", "/policies/constraints", {}).status == 403


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda b: b["context"].update(features=[0.0]), 422, "feature_dimension_mismatch"),
        (lambda b: b["candidates"][3].update(features=[1.0]), 422, "feature_dimension_mismatch"),
        (lambda b: b["candidates"].append(dict(b["candidates"][0])), 422, "validation_error"),
        (lambda b: b.update(candidates=[]), 422, "validation_error"),
        (lambda b: b["candidates"][0].update(retrieval_score="high"), 422, "validation_error"),
        (lambda b: b.update(top_k=0), 422, "validation_error"),
    ],
)
def test_bad_rank_requests_get_422(demo: Api, mutate: Any, status: int, code: str) -> None:
    body = rank_body()
    mutate(body)
    r = demo.post("/rank", body)
    assert (r.status, error_code(r)) == (status, code)


def test_more_than_1000_candidates_is_refused(demo: Api) -> None:
    r = demo.post("/rank", rank_body(n=1001))
    assert r.status == 422


def test_top_k_truncates(demo: Api) -> None:
    assert len(demo.post("/rank", rank_body(top_k=3)).json()["ranking"]) == 3


def test_a_corrupt_production_artifact_never_fails_the_request(demo: Api) -> None:
    from policyhub.adapters import aws
    from policyhub.adapters.s3_artifacts import artifact_key

    sha = demo.get("/policies/v1.2.4").json()["artifact"]["sha256"]
    aws.s3().put_object(
        Bucket=settings().artifact_bucket,
        Key=artifact_key("demo", "memory_manager", sha),
        Body=b"tampered",
    )
    r = demo.post("/rank", rank_body())
    assert r.status == 200 and r.json()["variant"] == "retrieval"
    decision = next(x for x in logged("demo") if x["type"] == "decision")
    assert decision["failed_version"] == "v1.2.4" and "sha256" in decision["error"]


def test_a_rollback_reaches_traffic_within_the_pointer_ttl(
    demo: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLICYHUB_POINTER_TTL_SECONDS", "0.3")
    container.reset()
    assert demo.post("/rank", rank_body()).json()["policy_version"] == "v1.2.4"
    assert (
        demo.post(
            "/policies/rollback", {"version": "v1.2.2", "agent_type": "memory_manager"}
        ).status
        == 200
    )
    time.sleep(0.35)
    assert demo.post("/rank", rank_body()).json()["policy_version"] == "v1.2.2"


def test_the_same_decision_replays_to_the_same_choice(demo: Api) -> None:
    import numpy as np

    from policyhub.ml.exploration import explore

    d = next(
        x for x in (demo.post("/rank", rank_body()), logged("demo"))[1] if x["type"] == "decision"
    )
    scores = np.array([c["retrieval_score"] for c in d["candidates"]], dtype=np.float32)
    first = explore(scores, d["seed_key"])[0][0]
    assert all(explore(scores, d["seed_key"])[0][0] == first for _ in range(5))
