"""AWS job runner: each training job is one ECS Fargate task of the training container.

The task reads its job from the environment (`POLICYHUB_JOB_ID`, `POLICYHUB_TENANT_ID`,
`POLICYHUB_AGENT_TYPE`) and runs `functions/training_task/main.py`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policyhub.adapters import aws

ENV_CLUSTER = "POLICYHUB_TRAINING_CLUSTER"
ENV_TASK_DEFINITION = "POLICYHUB_TRAINING_TASK_DEFINITION"
ENV_SUBNETS = "POLICYHUB_TRAINING_SUBNETS"
ENV_SECURITY_GROUP = "POLICYHUB_TRAINING_SECURITY_GROUP"
ENV_CONTAINER = "POLICYHUB_TRAINING_CONTAINER"
JOB_ENV = ("POLICYHUB_JOB_ID", "POLICYHUB_TENANT_ID", "POLICYHUB_AGENT_TYPE")


class JobLaunchError(RuntimeError):
    """ECS accepted the call but did not start the task."""


@dataclass(frozen=True)
class EcsTaskConfig:
    cluster: str
    task_definition: str
    subnets: tuple[str, ...]
    security_group: str | None
    container: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> EcsTaskConfig:
        missing = [k for k in (ENV_CLUSTER, ENV_TASK_DEFINITION, ENV_SUBNETS) if not env.get(k)]
        if missing:
            raise RuntimeError(f"the ECS job runner needs {', '.join(missing)}")
        return cls(
            cluster=env[ENV_CLUSTER],
            task_definition=env[ENV_TASK_DEFINITION],
            subnets=tuple(s.strip() for s in env[ENV_SUBNETS].split(",") if s.strip()),
            security_group=env.get(ENV_SECURITY_GROUP) or None,
            container=env.get(ENV_CONTAINER, "training"),
        )


class EcsJobRunner:
    def __init__(self, config: EcsTaskConfig) -> None:
        self._config = config

    def start(self, tenant_id: str, agent_type: str, job_id: str) -> None:
        c = self._config
        network: dict[str, Any] = {"subnets": list(c.subnets), "assignPublicIp": "DISABLED"}
        if c.security_group:
            network["securityGroups"] = [c.security_group]
        values = dict(zip(JOB_ENV, (job_id, tenant_id, agent_type), strict=True))
        out = aws.client("ecs").run_task(
            cluster=c.cluster,
            taskDefinition=c.task_definition,
            launchType="FARGATE",
            count=1,
            startedBy="policyhub-training",
            networkConfiguration={"awsvpcConfiguration": network},
            overrides={
                "containerOverrides": [
                    {
                        "name": c.container,
                        "environment": [{"name": k, "value": v} for k, v in values.items()],
                    }
                ]
            },
            tags=[{"key": "policyhub:job_id", "value": job_id}],
        )
        if out.get("failures") or not out.get("tasks"):
            failures = out.get("failures", [])
            reasons = "; ".join(f"{f.get('arn', '-')}: {f.get('reason', '?')}" for f in failures)
            raise JobLaunchError(f"ECS did not start the training task: {reasons or 'no task'}")
