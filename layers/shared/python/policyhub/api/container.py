"""Composition root: services wired to AWS adapters, built once per Lambda container.

Every choice between an AWS adapter and a local stand-in is made here from `settings()`: in aws
mode a stand-in is never chosen (`Settings.require` raises, naming the missing variables), and
a function that builds a service it uses only in part (rollback builds the rollout service but
never starts an execution) gets an adapter that refuses the part it is not configured for.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

from policyhub import signing
from policyhub.adapters.clock import SystemClock
from policyhub.adapters.dynamo_store import DynamoStore
from policyhub.adapters.emf_metrics import EmfRolloutMetrics, EmfServingMetrics
from policyhub.adapters.idempotency import PowertoolsOnce
from policyhub.adapters.interaction_logs import FirehoseSink
from policyhub.adapters.s3_artifacts import S3ArtifactStore
from policyhub.domain.versions import FeatureSchema
from policyhub.ml.scoring import SessionCache
from policyhub.ml.validation import validate_policy_artifact
from policyhub.services.constraints import ConstraintService
from policyhub.services.keys import KeyService
from policyhub.services.ranking import RankService
from policyhub.services.registry import Registry
from policyhub.services.serving_view_cache import ServingViewCache
from policyhub.settings import Mode, Need, settings

if TYPE_CHECKING:  # imported by the functions that use them: each Lambda loads what it needs
    from policyhub.adapters.cloudwatch_health import CloudWatchHealthReader
    from policyhub.adapters.cloudwatch_metric_sink import PutMetricDataSink
    from policyhub.adapters.dynamo_jobs import DynamoJobStore
    from policyhub.adapters.ecs_jobs import EcsJobRunner
    from policyhub.adapters.interaction_log_reader import S3InteractionLog
    from policyhub.adapters.local_jobs import ThreadJobRunner
    from policyhub.adapters.local_log_sink import BatchingS3Sink
    from policyhub.adapters.workflows import LocalRolloutRunner, StepFunctionsStarter
    from policyhub.domain.training import TrainingJob
    from policyhub.services.comparison import CompareService
    from policyhub.services.experiments import ExperimentService
    from policyhub.services.health_reader import LogHealthReader
    from policyhub.services.rollouts import RolloutService
    from policyhub.services.training import TrainingService


@cache
def store() -> DynamoStore:
    return DynamoStore(settings().table_name)


@cache
def registry() -> Registry:
    s = settings()

    def validate(data: bytes, schema: FeatureSchema) -> None:
        validate_policy_artifact(data, schema.context_dim, schema.item_dim, s.max_artifact_bytes)

    return Registry(
        store(), S3ArtifactStore(s.artifact_bucket), SystemClock(), validate, s.max_artifact_bytes
    )


@cache
def keys() -> KeyService:
    return KeyService(store(), SystemClock())


@cache
def constraints() -> ConstraintService:
    return ConstraintService(store(), SystemClock())


class NotConfigured:
    """Stands for a workflow starter or job runner this process has no settings for (aws mode
    only): building the service works, starting refuses with the variables it would need."""

    def __init__(self, need: Need) -> None:
        self.need = need

    def start(self, tenant_id: str, agent_type: str, run_id: str) -> None:
        settings().require(self.need)
        raise AssertionError(f"{self.need} is configured: NotConfigured should not be used")


@cache
def log_sink() -> FirehoseSink | BatchingS3Sink:
    s = settings()
    if s.log_stream:
        return FirehoseSink(s.log_stream, s.interaction_bucket)
    if s.mode is Mode.LOCAL:  # never in AWS: rank and feedback there lack DuckDB (117, 118)
        from policyhub.adapters.local_log_sink import BatchingS3Sink

        return BatchingS3Sink(s.interaction_bucket)
    s.require(Need.LOG_STREAM)
    raise AssertionError("aws mode without a log stream is refused by Settings.require")


@cache
def serving_metrics() -> EmfServingMetrics | PutMetricDataSink:
    """EMF in AWS; locally, when health comes from CloudWatch, the same health metrics put to
    the embedded CloudWatch (moto reads no EMF)."""
    s = settings()
    if s.mode is Mode.LOCAL and s.health_source == "cloudwatch":
        from policyhub.adapters.cloudwatch_metric_sink import PutMetricDataSink

        return PutMetricDataSink()
    return EmfServingMetrics()


@cache
def rank_service() -> RankService:
    s = settings()
    return RankService(
        ServingViewCache(store().get_serving_view, s.pointer_ttl_seconds),
        SessionCache(max_artifact_bytes=s.max_artifact_bytes),
        S3ArtifactStore(s.artifact_bucket),
        log_sink(),
        serving_metrics(),
        SystemClock(),
        PowertoolsOnce(s.table_name, "feedback"),
        max_artifact_bytes=s.max_artifact_bytes,
    )


@cache
def workflows() -> StepFunctionsStarter | LocalRolloutRunner | NotConfigured:
    from policyhub.adapters.workflows import LocalRolloutRunner, StepFunctionsStarter

    s = settings()
    if s.rollout_state_machine:
        return StepFunctionsStarter(s.rollout_state_machine)
    if s.mode is Mode.LOCAL:
        return LocalRolloutRunner(lambda: rollouts().tick, s.local_tick_seconds)
    return NotConfigured(Need.START_ROLLOUTS)


@cache
def rollouts() -> RolloutService:
    from policyhub.adapters.cloudwatch_alarms import CloudWatchRolloutAlarms
    from policyhub.services.rollouts import RolloutService

    return RolloutService(
        store(),
        registry(),
        health_reader,
        workflows(),
        SystemClock(),
        CloudWatchRolloutAlarms(),
        EmfRolloutMetrics(),
    )


def health_reader() -> CloudWatchHealthReader | LogHealthReader:
    s = settings()
    if s.health_source == "cloudwatch":
        from policyhub.adapters.cloudwatch_health import CloudWatchHealthReader

        # EMF metrics are per minute; the local sink stamps each datum with its second.
        return CloudWatchHealthReader(resolution_seconds=1 if s.mode is Mode.LOCAL else 60)
    from policyhub.adapters.interaction_log_reader import S3InteractionLog
    from policyhub.services.health_reader import LogHealthReader

    return LogHealthReader(
        # The controller looks at the same growing window again and again: keep an hour of a
        # busy local stack's logs on disk (decision 113).
        S3InteractionLog(
            s.interaction_bucket,
            written_by_local_sink=s.local_log_sink,
            max_cached_bytes=2 << 30,
        )
    )


@cache
def experiments() -> ExperimentService:
    from policyhub.adapters.interaction_log_reader import S3InteractionLog
    from policyhub.services.experiments import ExperimentService

    return ExperimentService(
        store(), registry(), S3InteractionLog(settings().interaction_bucket), SystemClock()
    )


def reset() -> None:
    """Forget wired services (tests and the local stack change settings)."""
    if workflows.cache_info().currsize:
        runner = workflows()
        stop = getattr(runner, "stop", None)
        if stop is not None:
            stop()
    for flushed in (log_sink, serving_metrics):  # the local sinks' flusher threads
        if flushed.cache_info().currsize:
            close = getattr(flushed(), "close", None)
            if close is not None:
                close()
    for f in (
        store,
        registry,
        keys,
        constraints,
        log_sink,
        serving_metrics,
        rank_service,
        workflows,
        rollouts,
        experiments,
    ):
        f.cache_clear()
    settings.cache_clear()
    signing.reset()
    _reset_learning()


# ---- the learning loop: training jobs and compare --------------------------------------------
@cache
def job_store() -> DynamoJobStore:
    from policyhub.adapters.dynamo_jobs import DynamoJobStore

    return DynamoJobStore(settings().table_name)


@cache
def job_runner() -> EcsJobRunner | ThreadJobRunner | NotConfigured:
    from policyhub.adapters.ecs_jobs import EcsJobRunner
    from policyhub.adapters.local_jobs import ThreadJobRunner

    s = settings()
    if s.ecs_task is not None:
        return EcsJobRunner(s.ecs_task)
    if s.job_runner == "local":  # local mode only (settings refuse it in aws)
        return ThreadJobRunner(run_training_job)
    return NotConfigured(Need.RUN_TRAINING)


def run_training_job(tenant_id: str, agent_type: str, job_id: str) -> TrainingJob:
    """The job body: what the ECS task's main.py and the local worker thread both call. Only
    it trains, so only it loads the trainer (scikit-learn, onnx, skl2onnx: not in the Lambda
    functions that start, list or schedule jobs; decision 117)."""
    from policyhub.ml.trainer import train_policy

    return training().run(tenant_id, agent_type, job_id, train_policy)


@cache
def interaction_log() -> S3InteractionLog:
    from policyhub.adapters.interaction_log_reader import S3InteractionLog

    return S3InteractionLog(settings().interaction_bucket)


@cache
def training() -> TrainingService:
    from policyhub.adapters.log_partitions import S3AgentDirectory
    from policyhub.services.training import TrainingConfig, TrainingService

    s = settings()
    return TrainingService(
        job_store(),
        registry(),
        interaction_log,
        job_runner(),
        S3AgentDirectory(s.interaction_bucket),
        SystemClock(),
        TrainingConfig(
            min_new_interactions=s.min_new_interactions,
            window=timedelta(hours=s.training_window_hours),
        ),
    )


@cache
def comparisons() -> CompareService:
    from policyhub.adapters.interaction_log_reader import S3InteractionLog
    from policyhub.services.comparison import CompareService

    s = settings()
    return CompareService(
        registry(),
        S3ArtifactStore(s.artifact_bucket),
        S3InteractionLog(s.interaction_bucket),
        SystemClock(),
        s.max_artifact_bytes,
    )


def _reset_learning() -> None:
    if job_runner.cache_info().currsize:
        stop = getattr(job_runner(), "stop", None)
        if stop is not None:
            stop()
    for f in (job_store, job_runner, interaction_log, training, comparisons):
        f.cache_clear()
