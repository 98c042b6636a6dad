"""Definitions of the AWS resources the code relies on.

The CDK stack and the local embedded stack both create their tables and buckets from these,
so the key design cannot drift between AWS and a developer's machine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GlobalIndex:
    name: str
    partition_key: str
    sort_key: str


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    default_name: str
    partition_key: str
    sort_key: str
    indexes: tuple[GlobalIndex, ...]
    ttl_attribute: str | None
    env_var: str


REGISTRY_TABLE = TableSpec(
    logical_id="RegistryTable",
    default_name="policyhub-registry",
    partition_key="pk",
    sort_key="sk",
    indexes=(GlobalIndex("gsi1", "gsi1pk", "gsi1sk"),),
    ttl_attribute="expires_at",
    env_var="POLICYHUB_TABLE",
)


@dataclass(frozen=True)
class BucketSpec:
    logical_id: str
    default_name: str
    env_var: str


ARTIFACT_BUCKET = BucketSpec("ArtifactBucket", "policyhub-artifacts", "POLICYHUB_ARTIFACT_BUCKET")
# Not named "logs": moto's virtual-host routing mistakes a bucket named like a service.
INTERACTION_BUCKET = BucketSpec(
    "InteractionBucket", "policyhub-interactions", "POLICYHUB_INTERACTION_BUCKET"
)

TABLES: tuple[TableSpec, ...] = (REGISTRY_TABLE,)
BUCKETS: tuple[BucketSpec, ...] = (ARTIFACT_BUCKET, INTERACTION_BUCKET)
