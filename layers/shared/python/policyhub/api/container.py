"""Composition root: services wired to AWS adapters, built once per Lambda container."""

from __future__ import annotations

from functools import cache

from policyhub import signing
from policyhub.adapters.clock import SystemClock
from policyhub.adapters.dynamo_store import DynamoStore
from policyhub.adapters.emf_metrics import EmfServingMetrics
from policyhub.adapters.idempotency import PowertoolsOnce
from policyhub.adapters.interaction_logs import BatchingS3Sink, FirehoseSink
from policyhub.adapters.s3_artifacts import S3ArtifactStore
from policyhub.domain.versions import FeatureSchema
from policyhub.ml.scoring import SessionCache
from policyhub.ml.validation import validate_policy_artifact
from policyhub.services.constraints import ConstraintService
from policyhub.services.keys import KeyService
from policyhub.services.ranking import RankService
from policyhub.services.registry import Registry
from policyhub.services.serving_view_cache import ServingViewCache
from policyhub.settings import settings


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


@cache
def log_sink() -> FirehoseSink | BatchingS3Sink:
    s = settings()
    if s.log_stream:
        return FirehoseSink(s.log_stream, s.interaction_bucket)
    return BatchingS3Sink(s.interaction_bucket)


@cache
def rank_service() -> RankService:
    s = settings()
    return RankService(
        ServingViewCache(store().get_serving_view, s.pointer_ttl_seconds),
        SessionCache(max_artifact_bytes=s.max_artifact_bytes),
        S3ArtifactStore(s.artifact_bucket),
        log_sink(),
        EmfServingMetrics(),
        SystemClock(),
        PowertoolsOnce(s.table_name, "feedback"),
        max_artifact_bytes=s.max_artifact_bytes,
    )


def reset() -> None:
    """Forget wired services (tests and the local stack change settings)."""
    if log_sink.cache_info().currsize:
        sink = log_sink()
        if isinstance(sink, BatchingS3Sink):
            sink.close()
    for f in (store, registry, keys, constraints, log_sink, rank_service):
        f.cache_clear()
    settings.cache_clear()
    signing.reset()
