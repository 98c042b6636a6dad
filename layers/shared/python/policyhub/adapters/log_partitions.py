"""Which (tenant, agent) pairs have interaction logs, from the bucket's partition prefixes."""

from __future__ import annotations

from collections.abc import Iterator

from policyhub.adapters import aws
from policyhub.adapters.interaction_logs import PREFIX


class S3AgentDirectory:
    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    def _children(self, prefix: str, key: str) -> Iterator[str]:
        """Values of `key=` one level below `prefix` (`interactions/tenant=acme/` -> `acme`)."""
        paginator = aws.s3().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                part = common.get("Prefix", "")[len(prefix) :].rstrip("/")
                if part.startswith(f"{key}="):
                    yield part[len(key) + 1 :]

    def agents(self) -> Iterator[tuple[str, str]]:
        for tenant in self._children(f"{PREFIX}/", "tenant"):
            for agent in self._children(f"{PREFIX}/tenant={tenant}/", "agent"):
                yield tenant, agent
