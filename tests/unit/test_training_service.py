"""Training jobs on fakes: when a job may start, what a run registers, the schedule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from policyhub.domain.access import Principal, Role, Tier
from policyhub.domain.audit import AuditAction
from policyhub.domain.errors import PolicyHubError
from policyhub.domain.training import JobStatus, JobTrigger
from policyhub.domain.versions import FeatureSchema, PolicyStatus
from policyhub.ml.onnx_models import random_linear_policy
from policyhub.ml.trainer import TrainerConfig, train_policy
from policyhub.ml.validation import validate_policy_artifact
from policyhub.services.registry import Registry
from policyhub.services.training import TrainingConfig, TrainingService
from tests.support.fakes import FixedClock, MemoryArtifactStore, MemoryJobStore, MemoryStore
from tests.support.learning import (
    FixedAgents,
    MemoryInteractionLog,
    RecordingRunner,
    simulated_records,
)

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
AGENT = "memory_manager"
MEMBER = Principal("acme", "key-1", Tier.PRO, Role.MEMBER)
SCHEMA = FeatureSchema(context_dim=3, item_dim=3)


@dataclass
class World:
    store: MemoryStore
    jobs: MemoryJobStore
    logs: MemoryInteractionLog
    runner: RecordingRunner
    clock: FixedClock
    registry: Registry
    service: TrainingService
    agents: FixedAgents

    def log(self, n: int, tenant: str = "acme", agent: str = AGENT, seed: int = 1) -> None:
        self.logs.records += simulated_records(
            n, tenant_id=tenant, agent_type=agent, end=self.clock.now(), seed=seed
        )

    def run_started(self) -> None:
        for tenant, agent, job_id in self.runner.started:
            self.service.run(tenant, agent, job_id, train_policy)


def _validate(data: bytes, schema: FeatureSchema) -> None:
    validate_policy_artifact(data, schema.context_dim, schema.item_dim, 1 << 20)


@pytest.fixture
def world() -> World:
    store = MemoryStore()
    jobs = MemoryJobStore(store)
    clock = FixedClock(NOW)
    registry = Registry(store, MemoryArtifactStore(), clock, _validate, 1 << 20)
    logs, runner = MemoryInteractionLog(), RecordingRunner()
    agents = FixedAgents(("acme", AGENT), ("acme", "search"))
    config = TrainingConfig(min_new_interactions=300, trainer=TrainerConfig(n_bootstrap=50))
    service = TrainingService(jobs, registry, lambda: logs, runner, agents, clock, config)
    return World(store, jobs, logs, runner, clock, registry, service, agents)


def _code(exc: pytest.ExceptionInfo[PolicyHubError]) -> str:
    return exc.value.code


def test_too_few_new_interactions_is_insufficient_data_and_starts_nothing(world: World) -> None:
    world.log(299)
    with pytest.raises(PolicyHubError) as err:
        world.service.start(MEMBER, "acme", AGENT, JobTrigger.API)
    assert _code(err) == "insufficient_data" and err.value.status == 409
    assert "299" in err.value.message
    assert world.runner.started == [] and world.jobs.jobs == {}


def test_decisions_without_feedback_or_opted_out_do_not_count(world: World) -> None:
    world.log(400)
    decisions = [r for r in world.logs.records if r["type"] == "decision"]
    for d in decisions[:60]:
        d["use_rl_ranking"] = False
    answered = {d["decision_id"] for d in decisions[60:110]}
    world.logs.records = [
        r for r in world.logs.records if r["type"] == "decision" or r["decision_id"] not in answered
    ]
    assert world.service.new_interactions("acme", AGENT, NOW - timedelta(hours=1), NOW) == 290


def test_force_starts_a_job_without_enough_data(world: World) -> None:
    world.log(20)
    job = world.service.start(MEMBER, "acme", AGENT, JobTrigger.API, force=True)
    assert (job.status, job.trigger) == (JobStatus.QUEUED, JobTrigger.API)
    assert job.requested_by == "key-1"
    assert world.runner.started == [("acme", AGENT, job.job_id)]
    assert job.window_end == NOW and job.window_start == NOW - timedelta(hours=168)


def test_only_one_job_per_agent_is_queued_or_running(world: World) -> None:
    world.log(400)
    first = world.service.start(MEMBER, "acme", AGENT, JobTrigger.API)
    with pytest.raises(PolicyHubError) as err:
        world.service.start(MEMBER, "acme", AGENT, JobTrigger.API, force=True)
    assert _code(err) == "job_active" and first.job_id in err.value.message
    assert [d.issue for d in err.value.details] == [first.job_id]
    other = world.service.start(MEMBER, "acme", "search", JobTrigger.API, force=True)
    assert other.job_id != first.job_id


def test_a_job_registers_a_candidate_with_lineage_and_moves_the_cursor(world: World) -> None:
    production = world.registry.register(
        MEMBER, "acme", AGENT, random_linear_policy(SCHEMA.input_dim, seed=1), SCHEMA
    )
    world.registry.promote_immediate(MEMBER, AGENT, production.version, None)
    world.log(600)
    job = world.service.start(MEMBER, "acme", AGENT, JobTrigger.API)
    world.clock.current = NOW + timedelta(minutes=1)
    done = world.service.run("acme", AGENT, job.job_id, train_policy)
    assert done.status is JobStatus.SUCCEEDED and done.error is None
    assert done.candidate_version == "v1.0.1" and done.interactions_used == 600
    assert done.started_at == NOW + timedelta(minutes=1) and done.finished_at is not None
    version = world.registry.version("acme", AGENT, "v1.0.1")
    assert version.status is PolicyStatus.CANDIDATE and version.feature_schema == SCHEMA
    assert (version.parent_version, version.training_job_id) == ("v1.0.0", job.job_id)
    assert version.trained_on is not None and version.trained_on.interactions == 600
    assert (version.trained_on.window_start, version.trained_on.window_end) == (
        job.window_start,
        job.window_end,
    )
    assert version.metrics.offline["n_train"] + version.metrics.offline["n_holdout"] == 600
    assert world.jobs.get_active("acme", AGENT) is None
    assert world.jobs.get_cursor("acme", AGENT) == job.window_end
    train_events = [e for e in world.store.audit["acme"] if e.action is AuditAction.TRAIN]
    assert [e.details["status"] for e in train_events] == ["queued", "succeeded"]
    assert train_events[-1].to_version == "v1.0.1"


def test_a_failed_job_registers_nothing_and_keeps_its_error(world: World) -> None:
    world.log(400)
    for r in world.logs.records:
        if r["type"] == "feedback":
            r["success"], r["clicked_ids"] = False, []
    job = world.service.start(MEMBER, "acme", AGENT, JobTrigger.API)
    failed = world.service.run("acme", AGENT, job.job_id, train_policy)
    assert failed.status is JobStatus.FAILED and failed.candidate_version is None
    assert failed.error is not None and "rewards are equal" in failed.error
    assert world.store.versions.get(("acme", AGENT), {}) == {}
    assert world.jobs.get_active("acme", AGENT) is None
    assert world.jobs.get_cursor("acme", AGENT) is None
    assert world.jobs.get_job("acme", AGENT, job.job_id) == failed


def test_a_retried_worker_does_not_train_twice(world: World) -> None:
    world.log(400)
    job = world.service.start(MEMBER, "acme", AGENT, JobTrigger.API)
    first = world.service.run("acme", AGENT, job.job_id, train_policy)
    again = world.service.run("acme", AGENT, job.job_id, train_policy)
    assert again == first and len(world.store.versions[("acme", AGENT)]) == 1


def test_a_job_whose_worker_cannot_start_fails_and_frees_the_agent(world: World) -> None:
    world.log(400)
    world.runner.fail = True
    with pytest.raises(PolicyHubError) as err:
        world.service.start(MEMBER, "acme", AGENT, JobTrigger.API)
    assert err.value.status == 503
    (job,) = world.jobs.jobs.values()
    assert job.status is JobStatus.FAILED and "no capacity" in (job.error or "")
    assert world.jobs.get_active("acme", AGENT) is None


def test_a_job_whose_lease_ran_out_is_abandoned_and_replaced(world: World) -> None:
    world.log(400)
    stuck = world.service.start(MEMBER, "acme", AGENT, JobTrigger.API)
    world.clock.current = NOW + timedelta(hours=2)  # the queued lease is one hour
    fresh = world.service.start(MEMBER, "acme", AGENT, JobTrigger.API, force=True)
    old = world.jobs.get_job("acme", AGENT, stuck.job_id)
    assert old is not None and old.status is JobStatus.FAILED
    assert "abandoned" in (old.error or "")
    active = world.jobs.get_active("acme", AGENT)
    assert active is not None and active.job_id == fresh.job_id


def test_the_schedule_starts_agents_with_enough_data_and_is_safe_to_run_twice(
    world: World,
) -> None:
    world.log(400)
    world.log(100, agent="search", seed=2)
    first = world.service.run_schedule()
    assert [(s["agent_type"]) for s in first.started] == [AGENT]
    assert {(s["agent_type"], s["reason"]) for s in first.skipped} == {
        ("search", "insufficient_data")
    }
    second = world.service.run_schedule()
    assert second.started == [] and second.errors == []
    assert {(s["agent_type"], s["reason"]) for s in second.skipped} == {
        (AGENT, "job_active"),
        ("search", "insufficient_data"),
    }
    world.run_started()
    world.clock.current = NOW + timedelta(hours=6)
    third = world.service.run_schedule()
    assert third.started == [] and len(world.runner.started) == 1
    assert {s["reason"] for s in third.skipped} == {"insufficient_data"}
    (job,) = world.jobs.jobs.values()
    assert job.trigger is JobTrigger.SCHEDULE and job.requested_by == "system"


def test_new_interactions_after_a_training_are_counted_from_its_window_end(world: World) -> None:
    world.log(400)
    job = world.service.start(None, "acme", AGENT, JobTrigger.SCHEDULE)
    world.service.run("acme", AGENT, job.job_id, train_policy)
    world.clock.current = NOW + timedelta(hours=1)
    world.log(350, seed=3)
    again = world.service.start(None, "acme", AGENT, JobTrigger.SCHEDULE)
    assert again.new_interactions == 350


def test_jobs_are_listed_newest_first_and_found_by_id(world: World) -> None:
    ids = []
    for hour in range(3):
        world.clock.current = NOW + timedelta(hours=hour)
        job = world.service.start(MEMBER, "acme", AGENT, JobTrigger.API, force=True)
        ids.append(job.job_id)
        world.service.run("acme", AGENT, job.job_id, train_policy)  # no data: fails, frees it
    page = world.service.list_jobs("acme", AGENT, 2, None)
    assert [j.job_id for j in page.items] == ids[::-1][:2] and page.next_key is not None
    rest = world.service.list_jobs("acme", AGENT, 2, page.next_key)
    assert [j.job_id for j in rest.items] == ids[:1] and rest.next_key is None
    assert world.service.job("acme", ids[0]).job_id == ids[0]
    with pytest.raises(PolicyHubError) as err:
        world.service.job("other-tenant", ids[0])
    assert _code(err) == "job_not_found"
