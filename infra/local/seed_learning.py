"""The demo's current policy line, made by real training on simulated interaction logs.

Each round logs simulated decisions and feedback (ml/simulator.py) through the local log sink,
served by the production policy of that moment (or retrieval order while no production policy
fits the feature schema), then starts a training job as the demo admin would (forced: the
seed does not wait for 1,000 new interactions), which runs on the local job runner, trains on
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
from policyhub.domain.training import JobStatus, JobTrigger, TrainingJob
from policyhub.domain.versions import FeatureSchema
from policyhub.ml.scorers import Scorer, onnx_scorer, retrieval_scorer
from policyhub.ml.simulated_users import SEEDED_USERS
from policyhub.ml.simulator import BanditSimulator, dataset_records
from policyhub.settings import settings


@dataclass(frozen=True)
class Round:
    decisions: int
    promote_after: bool = False
    """Promote the version this round's training registers."""


# v1.2.0 … v1.2.6: retrieval logs the first three rounds; v1.2.2, then v1.2.4 serve after.
# v1.2.4 goes live trained on 700 interactions; 2,500 more are logged under it before v1.2.5
# is trained (on 3,200), so compare finds v1.2.5 better than production with a clear margin
# (lift ~+0.09, 95 % lower bound ~+0.06 on ~740 held-out decisions). The product page's
# "Promote" example then promotes it and its "Emergency Rollback" to v1.2.4 aborts that
# rollout: the page's three examples run in order on a fresh stack (issue 14; decision 107).
ROUNDS: tuple[Round, ...] = (
    Round(150),
    Round(150),
    Round(200, promote_after=True),
    Round(100),
    Round(100, promote_after=True),
    Round(2500),
    Round(500),
)
SEEDED_SCHEMA = FeatureSchema(
    context_dim=SEEDED_USERS.context_dim, item_dim=SEEDED_USERS.item_dim
)
"""The trained line's feature schema: that of the users it is trained on (and that
`policyhub traffic` plays against it)."""


class SeedTrainingError(RuntimeError):
    pass


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
    """Log n decisions with feedback through the local log sink, all after `after`.

    `log_dataset` draws the served items in one vectorised batch (not one generator per
    decision id as the rank path does); the logged propensities are exact all the same.
    """
    data = sim.log_dataset(n, scorer, seed=seed)
    records = dataset_records(
        data, scorer(data.features), tenant_id=tenant_id, agent_type=agent_type,
        policy_version=production, after=after,
        end=datetime.now(UTC) - timedelta(milliseconds=200),
    )  # fmt: skip
    sink = container.log_sink()
    for record in records:
        sink.put(record)
    flush = getattr(sink, "flush", None)
    if flush is not None:
        flush()


def _train(admin: Principal, tenant_id: str, agent_type: str) -> TrainingJob:
    """What the demo's admin does with `POST /v1/policies/train {"force": true}`."""
    started = container.training().start(admin, tenant_id, agent_type, JobTrigger.API, force=True)
    runner = container.job_runner()
    if isinstance(runner, ThreadJobRunner):
        runner.wait_idle()
    job = container.training().job(tenant_id, started.job_id)
    if job.status is not JobStatus.SUCCEEDED or job.candidate_version is None:
        raise SeedTrainingError(f"seed training job {job.job_id} ended {job.status}: {job.error}")
    return job


def seed_trained_line(admin: Principal, tenant_id: str, agent_type: str) -> list[TrainingJob]:
    """Train the rounds of ROUNDS on `SEEDED_USERS`; return their jobs (each registered one
    candidate, with schema `SEEDED_SCHEMA`)."""
    sim = BanditSimulator(SEEDED_USERS)
    registry = container.registry()
    serving: tuple[str, Scorer] | None = None
    after = datetime.now(UTC) - timedelta(minutes=30)
    jobs: list[TrainingJob] = []
    for index, spec in enumerate(ROUNDS):
        version, scorer = serving if serving else (None, retrieval_scorer)
        _log_round(sim, spec.decisions, scorer, index + 1, tenant_id, agent_type, version, after)
        job = _train(admin, tenant_id, agent_type)
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
