"""Composition root: services wired to AWS adapters, built once per Lambda container."""

from __future__ import annotations

from functools import cache

from policyhub.adapters.clock import SystemClock
from policyhub.adapters.dynamo_store import DynamoStore
from policyhub.adapters.s3_artifacts import S3ArtifactStore
from policyhub.domain.versions import FeatureSchema
from policyhub.ml.validation import validate_policy_artifact
from policyhub.services.keys import KeyService
from policyhub.services.registry import Registry
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


def reset() -> None:
    """Forget wired services (tests change settings between cases)."""
    for f in (store, registry, keys):
        f.cache_clear()
    settings.cache_clear()
