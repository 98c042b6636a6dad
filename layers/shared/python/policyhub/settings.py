"""Configuration from the environment, so the same code talks to AWS or the embedded stack.

boto3 itself honours AWS_ENDPOINT_URL, which is how the local stack points every client at moto.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from policyhub.resources import ARTIFACT_BUCKET, INTERACTION_BUCKET, REGISTRY_TABLE

MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    table_name: str
    artifact_bucket: str
    interaction_bucket: str
    max_artifact_bytes: int
    cursor_secret: str | None
    cursor_secret_arn: str | None
    log_stream: str | None
    pointer_ttl_seconds: float
    rollout_state_machine: str | None
    local_tick_seconds: float

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            table_name=env.get(REGISTRY_TABLE.env_var, REGISTRY_TABLE.default_name),
            artifact_bucket=env.get(ARTIFACT_BUCKET.env_var, ARTIFACT_BUCKET.default_name),
            interaction_bucket=env.get(INTERACTION_BUCKET.env_var, INTERACTION_BUCKET.default_name),
            max_artifact_bytes=int(env.get("POLICYHUB_MAX_ARTIFACT_BYTES", str(4 * MIB))),
            cursor_secret=env.get("POLICYHUB_CURSOR_SECRET"),
            cursor_secret_arn=env.get("POLICYHUB_CURSOR_SECRET_ARN"),
            log_stream=env.get("POLICYHUB_LOG_STREAM"),
            pointer_ttl_seconds=float(env.get("POLICYHUB_POINTER_TTL_SECONDS", "2")),
            rollout_state_machine=env.get("POLICYHUB_ROLLOUT_STATE_MACHINE"),
            local_tick_seconds=float(env.get("POLICYHUB_LOCAL_TICK_SECONDS", "0.5")),
        )


@cache
def settings() -> Settings:
    return Settings.from_env()
