"""AWS job runner: each training job is one ECS Fargate task of the training container.

The task reads its job from the environment (`POLICYHUB_JOB_ID`, `POLICYHUB_TENANT_ID`,
`POLICYHUB_AGENT_TYPE`) and runs `functions/training_task/main.py`. Where tasks run
(`EcsTaskConfig`) comes from `policyhub.settings` (`POLICYHUB_TRAINING_*`).
"""

from __future__ import annotations

from typing import Any

from policyhub.adapters import aws
from policyhub.settings import AGENT_TYPE, JOB_ID, TENANT_ID, EcsTaskConfig

JOB_ENV = (JOB_ID.name, TENANT_ID.name, AGENT_TYPE.name)
"""What each task gets as its environment (`policyhub.settings.task_job` reads it)."""

__all__ = ["JOB_ENV", "EcsJobRunner", "EcsTaskConfig", "JobLaunchError"]


class JobLaunchError(RuntimeError):
    """ECS accepted the call but did not start the task."""


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
