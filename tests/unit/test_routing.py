from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from policyhub.domain.routing import (
    ExperimentArm,
    ExperimentRoute,
    RolloutRoute,
    ServedPolicy,
    ServingView,
    assign,
    bucket,
)
from policyhub.domain.versions import FeatureSchema

SCHEMA = FeatureSchema(context_dim=1, item_dim=1)
PROD = ServedPolicy(version="v1.0.0", sha256="a" * 64, feature_schema=SCHEMA)
CAND = ServedPolicy(version="v1.0.1", sha256="b" * 64, feature_schema=SCHEMA)
STEPS = [5, 10, 25, 50, 100]


def _canary(percent: float) -> ServingView:
    return ServingView(
        production=PROD,
        rollout=RolloutRoute(
            rollout_id="r1", candidate=CAND, stage="canary", traffic_percent=percent
        ),
    )


@given(st.text(min_size=1, max_size=40))
def test_a_user_in_the_canary_stays_in_it_as_the_percentage_rises(user: str) -> None:
    variants = [assign(_canary(p), user).variant for p in STEPS]
    first = variants.index("canary") if "canary" in variants else len(variants)
    assert all(v == "canary" for v in variants[first:])
    assert variants[-1] == "canary"


def test_canary_share_matches_the_traffic_percent() -> None:
    users = [f"user-{i}" for i in range(20_000)]
    share = sum(assign(_canary(10), u).variant == "canary" for u in users) / len(users)
    assert 0.09 < share < 0.11


def test_shadow_serves_production_and_names_the_candidate_as_shadow() -> None:
    view = ServingView(
        production=PROD,
        rollout=RolloutRoute(rollout_id="r1", candidate=CAND, stage="shadow", traffic_percent=0),
    )
    a = assign(view, "anyone")
    assert (a.variant, a.policy, a.shadow, a.rollout_id) == ("production", PROD, CAND, "r1")


def test_no_production_means_retrieval() -> None:
    assert assign(ServingView(), "u").variant == "retrieval"


def test_experiment_arms_split_traffic_and_fall_back_to_production() -> None:
    view = ServingView(
        production=PROD,
        experiment=ExperimentRoute(
            experiment_id="e1",
            arms=[
                ExperimentArm(policy=PROD, traffic_percent=50),
                ExperimentArm(policy=CAND, traffic_percent=50),
            ],
        ),
    )
    arms = [assign(view, f"u{i}").policy for i in range(4000)]
    assert 0.45 < arms.count(CAND) / len(arms) < 0.55
    assert all(assign(view, "u1").fallback == PROD for _ in range(2))


def test_buckets_depend_on_the_salt() -> None:
    assert [bucket("u", "r1") for _ in range(3)] == [bucket("u", "r1")] * 3
    assert sum(bucket(f"u{i}", "r1") == bucket(f"u{i}", "r2") for i in range(1000)) < 10
