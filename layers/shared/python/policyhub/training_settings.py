"""Learning-loop configuration from the environment (which job runner, how much data)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from policyhub.domain.training import DEFAULT_MIN_NEW_INTERACTIONS, DEFAULT_WINDOW_HOURS

RunnerKind = Literal["ecs", "local"]


@dataclass(frozen=True)
class LearningSettings:
    job_runner: RunnerKind
    min_new_interactions: int
    training_window_hours: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> LearningSettings:
        runner = env.get("POLICYHUB_JOB_RUNNER", "local")
        if runner not in ("ecs", "local"):
            raise ValueError(f"POLICYHUB_JOB_RUNNER must be ecs or local, not {runner!r}")
        return cls(
            job_runner="ecs" if runner == "ecs" else "local",
            min_new_interactions=int(
                env.get("POLICYHUB_MIN_NEW_INTERACTIONS", str(DEFAULT_MIN_NEW_INTERACTIONS))
            ),
            training_window_hours=int(
                env.get("POLICYHUB_TRAINING_WINDOW_HOURS", str(DEFAULT_WINDOW_HOURS))
            ),
        )
