"""Property: whatever starts, runs and worker deaths interleave, an agent has at most one
queued-or-running job, and the guard names exactly that job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from policyhub.domain.errors import PolicyHubError
from policyhub.domain.training import JobTrigger
from policyhub.domain.versions import FeatureSchema
from policyhub.ml.trainer import train_policy
from policyhub.services.registry import Registry
from policyhub.services.training import TrainingService
from tests.support.fakes import FixedClock, MemoryArtifactStore, MemoryJobStore, MemoryStore
from tests.support.learning import FixedAgents, MemoryInteractionLog, RecordingRunner

AGENTS = ("memory_manager", "search")
Op = tuple[str, int, int]
ops = st.lists(
    st.tuples(
        st.sampled_from(["start", "run", "sleep"]),
        st.integers(0, len(AGENTS) - 1),
        st.integers(0, 6 * 60),
    ),
    max_size=25,
)


def _no_validation(data: bytes, schema: FeatureSchema) -> None:
    raise AssertionError("nothing is registered without logs")


@settings(max_examples=60, deadline=None)
@given(ops)
def test_an_agent_never_has_two_active_jobs(steps: list[Op]) -> None:
    store = MemoryStore()
    jobs = MemoryJobStore(store)
    clock = FixedClock(datetime(2026, 11, 1, tzinfo=UTC))
    runner = RecordingRunner()
    registry = Registry(store, MemoryArtifactStore(), clock, _no_validation, 1 << 20)
    service = TrainingService(
        jobs, registry, MemoryInteractionLog, runner, FixedAgents(), clock
    )
    for op, agent_index, minutes in steps:
        agent = AGENTS[agent_index]
        if op == "start":
            refused: str | None = None
            try:
                service.start(None, "acme", agent, JobTrigger.API, force=True)
            except PolicyHubError as exc:
                refused = exc.code
            assert refused in (None, "job_active")
        elif op == "run" and runner.started:
            _, run_agent, job_id = runner.started.pop(0)
            service.run("acme", run_agent, job_id, train_policy)  # no logs: the job fails quickly
        else:
            clock.current += timedelta(minutes=minutes)
        for a in AGENTS:
            active = [j for j in jobs.jobs.values() if j.agent_type == a and j.active]
            guard = jobs.get_active("acme", a)
            assert len(active) <= 1
            assert [j.job_id for j in active] == ([guard.job_id] if guard else [])
