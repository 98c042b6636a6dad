"""One schema for the decision and feedback records, and one outcome rule for every reader."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest

from policyhub.adapters.log_table import LogTable, join_logs
from policyhub.domain.experiment import ArmSpec
from policyhub.domain.interaction_records import (
    DECISION_FIELDS,
    FEEDBACK_FIELDS,
    DecisionRecord,
    FeedbackRecord,
    InteractionRecord,
    LoggedCandidate,
    Outcome,
    decision_record,
    feedback_record,
    outcome_of,
)
from policyhub.domain.serving import FeedbackRequest, RankRequest
from policyhub.domain.versions import FeatureSchema
from policyhub.ml.scorers import retrieval_scorer
from policyhub.ml.scoring import SessionCache
from policyhub.ml.simulator import BanditSimulator, SimulatorConfig, dataset_records
from policyhub.services import experiment_stats, health_reader
from policyhub.services.health_reader import LogHealthReader
from policyhub.services.logged_data import LogWindow
from policyhub.services.ranking import RankService
from policyhub.services.serving_view_cache import ServingViewCache
from tests.support.fakes import FixedClock, MemoryArtifactStore, MemoryStore
from tests.unit.rollout.builders import T0, in_canary

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class ListSink:
    def __init__(self) -> None:
        self.records: list[InteractionRecord] = []

    def put(self, record: InteractionRecord) -> None:
        self.records.append(record)


class RecordingMetrics:
    def __init__(self) -> None:
        self.successes: list[bool | None] = []

    def decision(self, *args: Any) -> None:
        pass

    def feedback(
        self, agent_type: str, variant: str, rollout_id: str | None, success: bool | None
    ) -> None:
        self.successes.append(success)


class OnceInMemory:
    def __init__(self) -> None:
        self.seen: set[str] = set()

    def run_once(self, key: str, action: Callable[[], None]) -> None:
        if key not in self.seen:
            self.seen.add(key)
            action()


def rank_service() -> tuple[RankService, ListSink, RecordingMetrics]:
    sink, metrics = ListSink(), RecordingMetrics()
    service = RankService(
        ServingViewCache(MemoryStore().get_serving_view),
        SessionCache(),
        MemoryArtifactStore(),
        sink,
        metrics,
        FixedClock(NOW),
        OnceInMemory(),
    )
    return service, sink, metrics


def rank_request() -> RankRequest:
    return RankRequest.model_validate(
        {
            "context": {"features": [0.1, 0.2]},
            "candidates": [
                {"id": f"doc-{i}", "retrieval_score": 1 - i / 10, "features": [float(i)] * 3,
                 "source": "s", "pinned": i == 0}
                for i in range(5)
            ],
            "routing_key": "user-1",
        }
    )  # fmt: skip


# ---- every writer writes the schema ------------------------------------------------------------


def test_rank_and_feedback_write_exactly_the_schema_fields() -> None:
    service, sink, _ = rank_service()
    ranked = service.rank("acme", rank_request())
    service.feedback("acme", FeedbackRequest(decision_id=ranked.decision_id, reward=0.8))
    decision, feedback = sink.records
    assert set(decision) == DECISION_FIELDS
    assert set(feedback) == FEEDBACK_FIELDS
    assert decision["type"] == "decision" and feedback["type"] == "feedback"
    assert decision["decision_id"] == feedback["decision_id"] == ranked.decision_id
    assert decision["seed_key"] == feedback["seed_key"] == ranked.decision_id.split(".")[0]
    assert decision["at"] == feedback["at"] == "2026-11-01T12:00:00.000000Z"
    assert [set(c) for c in decision["candidates"]] == [{"id", "retrieval_score", "features"}] * 5


def test_simulated_and_seeded_records_carry_exactly_the_schema_fields() -> None:
    sim = BanditSimulator(SimulatorConfig(context_dim=2, item_dim=3, n_candidates=4))
    decisions, feedback = sim.log_records(3, retrieval_scorer, seed=1)
    data = sim.log_dataset(3, retrieval_scorer, seed=2)
    seeded = dataset_records(
        data, retrieval_scorer(data.features), tenant_id="demo", agent_type="memory_manager",
        policy_version="v1.0.0", after=NOW, end=NOW + timedelta(minutes=1),
    )  # fmt: skip
    for record in [*decisions, *feedback, *seeded]:
        expected = DECISION_FIELDS if record["type"] == "decision" else FEEDBACK_FIELDS
        assert set(record) == expected
    assert [r["type"] for r in seeded] == ["decision", "feedback"] * 3


def test_readers_ask_only_for_columns_the_schema_defines() -> None:
    """DuckDB binds every column a query names: an empty table of COLUMNS refuses any other."""
    rollout = in_canary(5)
    with LogTable.of([]) as table:
        health = health_reader.LogHealthReader.summarise(rollout, table, T0, T0)
        assert health.baseline is not None and health.baseline.requests == 0
        arms = [ArmSpec(version="v1.0.1", traffic_percent=100)]
        assert experiment_stats.summarise("e-1", arms, table)["variants"][0]["decisions"] == 0
        window = LogWindow(table)
        assert (window.joined_count(), window.dominant_schema()) == (0, None)
        assert window.dataset(FeatureSchema(context_dim=2, item_dim=2))[0].n_decisions == 0
        with pytest.raises(duckdb.BinderException):
            table.rows("SELECT no_such_field FROM records")


# ---- one outcome rule --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"success": True}, Outcome(True, 1.0)),
        ({"success": False}, Outcome(False, 0.0)),
        ({"reward": 0.8}, Outcome(True, 0.8)),
        ({"reward": 0.5}, Outcome(True, 0.5)),
        ({"reward": 0.2}, Outcome(False, 0.2)),
        ({"success": True, "reward": 0.2}, Outcome(True, 0.2)),
        ({"success": False, "reward": 0.9}, Outcome(False, 0.9)),
        ({"success": False, "clicked_ids": ["doc-0"]}, Outcome(False, 0.0)),
    ],
)
def test_each_feedback_field_answers_its_own_question_and_stands_in_for_the_other(
    fields: dict[str, Any], expected: Outcome
) -> None:
    assert outcome_of(fields) == expected
    assert outcome_of(fields, chosen_id="doc-0") == expected


def test_clicks_decide_only_for_a_reader_that_knows_the_chosen_item() -> None:
    assert outcome_of({"clicked_ids": ["doc-1", "doc-0"]}, chosen_id="doc-0") == Outcome(True, 1.0)
    assert outcome_of({"clicked_ids": ["doc-1"]}, chosen_id="doc-0") == Outcome(False, 0.0)
    assert outcome_of({"clicked_ids": ["doc-0"]}) is None


@pytest.mark.parametrize(
    "fields", [{}, {"clicked_ids": []}, {"reward": 1.5}, {"reward": float("nan"), "success": True}]
)
def test_feedback_without_a_usable_answer_has_no_outcome(fields: dict[str, Any]) -> None:
    assert outcome_of(fields, chosen_id="doc-0") is None


SAME_FEEDBACK = pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"success": False}, id="success-only"),
        pytest.param({"reward": 0.8}, id="reward-only"),
        pytest.param({"success": True, "reward": 0.2}, id="both-disagreeing"),
        pytest.param({"success": False, "reward": 0.9}, id="both-disagreeing-the-other-way"),
    ],
)


def _decision(decision_id: str, **tags: Any) -> DecisionRecord:
    candidates: list[LoggedCandidate] = [
        {"id": f"doc-{j}", "retrieval_score": 1 - j / 10, "features": [0.5, 0.5]}
        for j in range(3)
    ]
    return decision_record(
        tenant_id="acme", agent_type="memory_manager", decision_id=decision_id, at=T0,
        context=[1.0, 2.0], candidates=candidates, ranking=["doc-0", "doc-1", "doc-2"],
        chosen_id="doc-0", propensity=0.5, epsilon=0.1, temperature=0.5, latency_ms=5.0, **tags,
    )  # fmt: skip


def _feedback(decision_id: str, fields: dict[str, Any], **tags: Any) -> FeedbackRecord:
    return feedback_record(
        tenant_id="acme", agent_type="memory_manager", decision_id=decision_id,
        at=T0 + timedelta(seconds=1), **tags, **fields,
    )  # fmt: skip


@SAME_FEEDBACK
def test_health_dataset_experiments_and_serving_metrics_read_one_outcome(
    fields: dict[str, Any],
) -> None:
    expected = outcome_of(fields)
    assert expected is not None

    # rollout health: a canary decision of the candidate and its feedback
    rollout = in_canary(5)
    tags = {"variant": "canary", "policy_version": rollout.candidate_version,
            "rollout_id": rollout.rollout_id}  # fmt: skip
    canary = [
        _decision("d-canary", assigned={"variant": "canary",
                                        "policy_version": rollout.candidate_version}, **tags),
        _feedback("d-canary", fields, **tags),
    ]  # fmt: skip
    with LogTable.of(canary) as table:
        health = LogHealthReader.summarise(rollout, table, T0, T0 + timedelta(minutes=1))
    assert health.candidate is not None
    assert (health.candidate.feedback_successes, health.candidate.feedback_failures) == (
        (1, 0) if expected.success else (0, 1)
    )

    # the learning data set
    data, _ = join_logs(
        [_decision("d-train", variant="retrieval", policy_version=None)],
        [_feedback("d-train", fields, variant="retrieval", policy_version=None)],
        context_dim=2,
        item_dim=2,
    )
    assert data.reward.tolist() == [expected.reward]

    # an experiment arm
    tags = {"variant": "experiment", "policy_version": "v1.0.2", "experiment_id": "e-1"}
    arms = [ArmSpec(version="v1.0.1", traffic_percent=50),
            ArmSpec(version="v1.0.2", traffic_percent=50)]  # fmt: skip
    with LogTable.of([_decision("d-arm", **tags), _feedback("d-arm", fields, **tags)]) as table:
        results = experiment_stats.summarise("e-1", arms, table)
    arm = next(v for v in results["variants"] if v["version"] == "v1.0.2")
    assert (arm["success_rate"], arm["mean_reward"]) == (float(expected.success), expected.reward)

    # the serving metrics (CloudWatch successes and failures) at POST /v1/feedback
    service, _, metrics = rank_service()
    ranked = service.rank("acme", rank_request())
    service.feedback("acme", FeedbackRequest(decision_id=ranked.decision_id, **fields))
    assert metrics.successes == [expected.success]
