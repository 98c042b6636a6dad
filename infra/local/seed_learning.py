"""The demo's current policy line, made by real training on simulated interaction logs.

Each round logs simulated decisions and feedback (ml/simulator.py) through the local log sink,
served by the production policy of that moment (or retrieval order while no production policy
fits the feature schema), then runs the 6-hourly schedule's entry point, whose job trains on
the window and registers the next candidate. The hidden reward function is the simulator's, so
later versions, trained on more data, are genuinely better on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from policyhub.adapters.local_jobs import ThreadJobRunner
from policyhub.adapters.s3_artifacts import S3ArtifactStore
from policyhub.api import container
from policyhub.domain.access import Principal
from policyhub.domain.training import JobStatus, TrainingJob
from policyhub.domain.versions import FeatureSchema
from policyhub.ml.scorers import Scorer, onnx_scorer, retrieval_scorer
from policyhub.ml.simulator import BanditSimulator, SimulatorConfig
from policyhub.settings import settings


@dataclass(frozen=True)
class Round:
    decisions: int
    promote_after: bool = False
    """Promote the version this round's training registers."""


# v1.2.0 … v1.2.6: retrieval logs the first three rounds; v1.2.2, then v1.2.4 serve after.
ROUNDS: tuple[Round, ...] = (
    Round(1000),
    Round(1000),
    Round(1000, promote_after=True),
    Round(1000),
    Round(1000, promote_after=True),
    Round(1500),
    Round(1000),
)
SIMULATOR_SEED = 7
CANDIDATES_PER_REQUEST = 6
"""Few candidates per request keeps the seed's logs, and so `make up`, small and quick."""


class SeedTrainingError(RuntimeError):
    pass


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _log_round(
    sim: BanditSimulator,
    n: int,
    scorer: Scorer,
    seed: int,
    tenant_id: str,
    agent_type: str,
    production: str | None,
    after: datetime,
) -> None:
    """Log n decisions with feedback, all strictly after `after` and before now."""
    decisions, feedback = sim.log_records(
        n, scorer, seed=seed, tenant_id=tenant_id, agent_type=agent_type,
        policy_version=production, variant="production" if production else "retrieval",
    )  # fmt: skip
    end = datetime.now(UTC) - timedelta(milliseconds=200)
    step = (end - after) / (n + 1)
    sink = container.log_sink()
    for i, (d, f) in enumerate(zip(decisions, feedback, strict=True)):
        at = after + step * (i + 1)
        d.update(at=_iso(at), use_rl_ranking=True, seed_key=d["decision_id"])
        f["at"] = _iso(at + step / 2)
        sink.put(d)
        sink.put(f)
    flush = getattr(sink, "flush", None)
    if flush is not None:
        flush()


def _train(tenant_id: str, agent_type: str) -> TrainingJob:
    report = container.training().run_schedule()
    started = [
        s for s in report.started if (s["tenant_id"], s["agent_type"]) == (tenant_id, agent_type)
    ]
    if not started:
        raise SeedTrainingError(f"the schedule started no training: {report.as_dict()}")
    runner = container.job_runner()
    if isinstance(runner, ThreadJobRunner):
        runner.wait_idle()
    job = container.training().job(tenant_id, started[0]["job_id"])
    if job.status is not JobStatus.SUCCEEDED or job.candidate_version is None:
        raise SeedTrainingError(f"seed training job {job.job_id} ended {job.status}: {job.error}")
    return job


def seed_trained_line(
    admin: Principal, tenant_id: str, agent_type: str, schema: FeatureSchema
) -> list[TrainingJob]:
    """Train the rounds of ROUNDS; return their jobs (each registered one candidate)."""
    sim = BanditSimulator(
        SimulatorConfig(
            context_dim=schema.context_dim,
            item_dim=schema.item_dim,
            n_candidates=CANDIDATES_PER_REQUEST,
            seed=SIMULATOR_SEED,
        )
    )
    registry = container.registry()
    serving: tuple[str, Scorer] | None = None
    after = datetime.now(UTC) - timedelta(minutes=30)
    jobs: list[TrainingJob] = []
    for index, spec in enumerate(ROUNDS):
        version, scorer = serving if serving else (None, retrieval_scorer)
        _log_round(sim, spec.decisions, scorer, index + 1, tenant_id, agent_type, version, after)
        job = _train(tenant_id, agent_type)
        jobs.append(job)
        after = job.window_end
        candidate = job.candidate_version
        assert candidate is not None
        if spec.promote_after:
            registry.promote_immediate(admin, agent_type, candidate, reason="history of the demo")
            trained = registry.version(tenant_id, agent_type, candidate)
            artifact = S3ArtifactStore(settings().artifact_bucket).get(
                tenant_id, agent_type, trained.artifact.sha256, settings().max_artifact_bytes
            )
            serving = (candidate, onnx_scorer(artifact))
    return jobs
