"""Deploy-time settings read from CDK context (`cdk.json` or `cdk deploy -c key=value`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from constructs import Construct

REPO_ROOT = Path(__file__).resolve().parents[2]

PREFIX = "policyhub:"


def _list(value: Any) -> tuple[str, ...]:
    """Context given on the command line arrives as a string; cdk.json gives a list."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(str(v) for v in value)


@dataclass(frozen=True)
class StackConfig:
    stage_name: str = "prod"
    log_retention_days: int = 30
    log_level: str = "INFO"
    throttle_rate_limit: float = 100.0
    """Requests per second, steady state, for the whole stage."""
    throttle_burst_limit: int = 200
    authorizer_cache_seconds: int = 300
    alarm_email: str | None = None
    api_5xx_alarm_threshold: int = 5
    """5xx responses in five minutes that page."""
    throttle_alarm_threshold: int = 50
    """429 responses in five minutes that page."""
    dashboard_agents: tuple[str, ...] = ("memory_manager",)
    web_acl_arn: str | None = None
    training_cpu: int = 1024
    """Fargate CPU units of one training task (1024 = 1 vCPU)."""
    training_memory_mib: int = 4096
    training_image: str | None = None
    """`<ECR repository name>:<tag>` of a training image pushed beforehand (decision 082);
    without it the image is built from functions/training_task/Dockerfile at deploy time."""
    training_azs: int = 2
    """Availability zones of the training VPC (each adds a set of interface endpoints)."""
    deps_layer_dir: Path = field(default=REPO_ROOT / "build" / "layers" / "deps")
    functions_dir: Path = field(default=REPO_ROOT / "functions")
    shared_layer_dir: Path = field(default=REPO_ROOT / "layers" / "shared")

    @classmethod
    def from_context(cls, scope: Construct) -> StackConfig:
        def ctx(key: str) -> Any:
            return scope.node.try_get_context(PREFIX + key)

        base = cls()
        deps = ctx("depsLayerDir")
        return cls(
            stage_name=str(ctx("stageName") or base.stage_name),
            log_retention_days=int(ctx("logRetentionDays") or base.log_retention_days),
            log_level=str(ctx("logLevel") or base.log_level),
            throttle_rate_limit=float(ctx("throttleRateLimit") or base.throttle_rate_limit),
            throttle_burst_limit=int(ctx("throttleBurstLimit") or base.throttle_burst_limit),
            authorizer_cache_seconds=int(
                ctx("authorizerCacheSeconds") or base.authorizer_cache_seconds
            ),
            alarm_email=ctx("alarmEmail") or None,
            api_5xx_alarm_threshold=int(
                ctx("api5xxAlarmThreshold") or base.api_5xx_alarm_threshold
            ),
            throttle_alarm_threshold=int(
                ctx("throttleAlarmThreshold") or base.throttle_alarm_threshold
            ),
            dashboard_agents=_list(ctx("dashboardAgents")) or base.dashboard_agents,
            web_acl_arn=ctx("webAclArn") or None,
            training_cpu=int(ctx("trainingCpu") or base.training_cpu),
            training_memory_mib=int(ctx("trainingMemoryMiB") or base.training_memory_mib),
            training_image=ctx("trainingImage") or None,
            training_azs=int(ctx("trainingAzs") or base.training_azs),
            deps_layer_dir=(REPO_ROOT / str(deps)) if deps else base.deps_layer_dir,
        )
