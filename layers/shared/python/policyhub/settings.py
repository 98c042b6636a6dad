"""Every setting the service reads from its environment, in one place (decision 102).

`Settings.from_env` parses them once per process (`settings()`); no other module of the service
reads `os.environ`. Each variable is a `Variable` below: its name, default and meaning. A value
that does not parse (a TTL that is not a number, an unknown runner) fails the load with a
`ConfigurationError` naming the variable, and every problem is reported at once.

Two modes:

- **aws** — inside AWS Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set or `AWS_EXECUTION_ENV` starts
  with `AWS_Lambda`), or with `POLICYHUB_MODE=aws` (the stack sets it on every function and on
  the training container; ECS is not detected, since CI runners run on ECS too). Table and
  bucket names must be given, and the service never picks a local stand-in: a capability
  (`Need`) whose variables are missing refuses with a `ConfigurationError` naming them. Each
  function checks the capabilities it needs at cold start (`check_at_cold_start`: a route's
  `needs`, a worker handler's `NEEDS`); the stack grants the same (`infra/stack/catalog.py`),
  and tests/infra loads every function's template environment with these settings.
- **local** — everywhere else: the local stack (which says `POLICYHUB_MODE=local`), tests,
  tools. Names default to the local stack's, and where a capability is not configured the
  in-process stand-in serves instead: a batching S3 sink for the log stream, a thread for the
  rollout state machine, a thread for the training job runner, and a random per-process key for
  the signing secret.

Not parsed here: variables libraries read themselves (boto3's `AWS_ENDPOINT_URL`, `AWS_REGION`,
credentials; Powertools' `POWERTOOLS_*` and `LOG_LEVEL`), the CLI's client settings
(`POLICYHUB_API_URL`, `POLICYHUB_API_KEY`, `POLICYHUB_LOCAL_DIR`, in `policyhub.cli`) and the
local stack's and demo's own (`POLICYHUB_PORT`, `POLICYHUB_AWS_PORT`, `POLICYHUB_REPORT_DIR`, in
`infra/local`): none of them is read by the service's functions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Literal

from policyhub.domain.training import DEFAULT_MIN_NEW_INTERACTIONS, DEFAULT_WINDOW_HOURS
from policyhub.resources import ARTIFACT_BUCKET, INTERACTION_BUCKET, REGISTRY_TABLE

MIB = 1024 * 1024

RunnerKind = Literal["ecs", "local"]
HealthSource = Literal["cloudwatch", "logs"]


class ConfigurationError(RuntimeError):
    """The environment does not configure what this process needs; the message names the
    variables."""


class Mode(StrEnum):
    AWS = "aws"
    LOCAL = "local"


@dataclass(frozen=True)
class Variable:
    name: str
    default: str | None
    meaning: str


MODE = Variable(
    "POLICYHUB_MODE",
    None,
    "aws or local. Inside Lambda always aws (local is refused there); elsewhere local unless "
    "it says aws. The stack sets aws (functions, training container), the local stack local.",
)
TABLE = Variable(
    REGISTRY_TABLE.env_var,
    REGISTRY_TABLE.default_name,
    "The registry DynamoDB table. Required in aws; the default is the local stack's.",
)
ARTIFACTS = Variable(
    ARTIFACT_BUCKET.env_var,
    ARTIFACT_BUCKET.default_name,
    "The S3 bucket of ONNX policy artifacts. Required in aws; the default is the local stack's.",
)
INTERACTIONS = Variable(
    INTERACTION_BUCKET.env_var,
    INTERACTION_BUCKET.default_name,
    "The S3 bucket of interaction logs (decisions, feedback). Required in aws; the default is "
    "the local stack's.",
)
MAX_ARTIFACT_BYTES = Variable(
    "POLICYHUB_MAX_ARTIFACT_BYTES",
    str(4 * MIB),
    "Largest ONNX artifact accepted and loaded, in bytes (a positive integer).",
)
CURSOR_SECRET = Variable(
    "POLICYHUB_CURSOR_SECRET",
    None,
    "Local only: the master secret of the HMACs on cursors and decision ids (the local stack "
    "sets a random one per start). Refused in aws, where the secret comes from Secrets Manager.",
)
CURSOR_SECRET_ARN = Variable(
    "POLICYHUB_CURSOR_SECRET_ARN",
    None,
    "Secrets Manager secret holding that master secret (read once, cached an hour). In aws "
    "required by functions that sign or verify cursors or decision ids.",
)
LOG_STREAM = Variable(
    "POLICYHUB_LOG_STREAM",
    None,
    "Firehose stream for decision and feedback records. In aws required by functions that "
    "write them; locally, without it, a batching S3 sink writes them.",
)
POINTER_TTL_SECONDS = Variable(
    "POLICYHUB_POINTER_TTL_SECONDS",
    "2",
    "How long rank keeps an agent's serving view (deployment pointer) before re-reading it, "
    "in seconds (>= 0): a rollback reaches serving within it.",
)
ROLLOUT_STATE_MACHINE = Variable(
    "POLICYHUB_ROLLOUT_STATE_MACHINE",
    None,
    "ARN of the Step Functions state machine that drives rollouts. In aws required by functions "
    "that start rollouts; locally, without it, a thread of the process drives them.",
)
LOCAL_TICK_SECONDS = Variable(
    "POLICYHUB_LOCAL_TICK_SECONDS",
    "0.5",
    "Local rollout thread only: seconds between its looks at active rollouts (> 0).",
)
HEALTH_SOURCE = Variable(
    "POLICYHUB_HEALTH_SOURCE",
    None,
    "cloudwatch (the default) or logs: where the rollout controller reads a step's health. "
    "cloudwatch: GetMetricData over the rank function's health metrics (EMF in AWS; locally "
    "the metrics the rank path puts to the embedded CloudWatch); logs: the decision and "
    "feedback logs (decisions 119-121).",
)
JOB_RUNNER = Variable(
    "POLICYHUB_JOB_RUNNER",
    None,
    "ecs or local: where training jobs run. In aws only ecs, and required (with the "
    "POLICYHUB_TRAINING_* settings) by functions that start jobs; locally the default is local "
    "(a thread of the process).",
)
MIN_NEW_INTERACTIONS = Variable(
    "POLICYHUB_MIN_NEW_INTERACTIONS",
    str(DEFAULT_MIN_NEW_INTERACTIONS),
    "New logged interactions an agent needs before the schedule trains it (integer >= 1).",
)
TRAINING_WINDOW_HOURS = Variable(
    "POLICYHUB_TRAINING_WINDOW_HOURS",
    str(DEFAULT_WINDOW_HOURS),
    "Hours of logs a training job learns from (integer >= 1).",
)
TRAINING_CLUSTER = Variable(
    "POLICYHUB_TRAINING_CLUSTER", None, "ECS cluster of training tasks (with runner ecs)."
)
TRAINING_TASK_DEFINITION = Variable(
    "POLICYHUB_TRAINING_TASK_DEFINITION", None, "Task definition of the training container."
)
TRAINING_SUBNETS = Variable(
    "POLICYHUB_TRAINING_SUBNETS", None, "Comma-separated subnet ids for training tasks."
)
TRAINING_SECURITY_GROUP = Variable(
    "POLICYHUB_TRAINING_SECURITY_GROUP", None, "Security group of training tasks (optional)."
)
TRAINING_CONTAINER = Variable(
    "POLICYHUB_TRAINING_CONTAINER", "training", "Container name inside the task definition."
)
JOB_ID = Variable(
    "POLICYHUB_JOB_ID", None, "Training task only: the job it runs (set per task by ECS)."
)
TENANT_ID = Variable("POLICYHUB_TENANT_ID", None, "Training task only: the job's tenant.")
AGENT_TYPE = Variable("POLICYHUB_AGENT_TYPE", None, "Training task only: the job's agent type.")

VARIABLES: tuple[Variable, ...] = (
    MODE,
    TABLE,
    ARTIFACTS,
    INTERACTIONS,
    MAX_ARTIFACT_BYTES,
    CURSOR_SECRET,
    CURSOR_SECRET_ARN,
    LOG_STREAM,
    POINTER_TTL_SECONDS,
    ROLLOUT_STATE_MACHINE,
    LOCAL_TICK_SECONDS,
    HEALTH_SOURCE,
    JOB_RUNNER,
    MIN_NEW_INTERACTIONS,
    TRAINING_WINDOW_HOURS,
    TRAINING_CLUSTER,
    TRAINING_TASK_DEFINITION,
    TRAINING_SUBNETS,
    TRAINING_SECURITY_GROUP,
    TRAINING_CONTAINER,
    JOB_ID,
    TENANT_ID,
    AGENT_TYPE,
)
"""Every variable the service reads (the runtime markers below aside)."""

LAMBDA_MARKER = "AWS_LAMBDA_FUNCTION_NAME"
EXECUTION_ENV = "AWS_EXECUTION_ENV"
"""Set by AWS: `AWS_Lambda_python3.12` in Lambda."""

REQUIRED_IN_AWS: tuple[Variable, ...] = (TABLE, ARTIFACTS, INTERACTIONS)
"""What every process needs in aws, whatever it does."""


class Need(StrEnum):
    """A capability that has a local stand-in; in aws it needs its variables."""

    SIGNING = "signing"
    LOG_STREAM = "log_stream"
    START_ROLLOUTS = "start_rollouts"
    RUN_TRAINING = "run_training"


NEEDS: dict[Need, tuple[Variable, ...]] = {
    Need.SIGNING: (CURSOR_SECRET_ARN,),
    Need.LOG_STREAM: (LOG_STREAM,),
    Need.START_ROLLOUTS: (ROLLOUT_STATE_MACHINE,),
    Need.RUN_TRAINING: (JOB_RUNNER, TRAINING_CLUSTER, TRAINING_TASK_DEFINITION, TRAINING_SUBNETS),
}
"""The variables each capability needs in aws (`POLICYHUB_JOB_RUNNER` must say ecs)."""

STAND_INS: dict[Need, str] = {
    Need.SIGNING: "a random key per process (cursors and decision ids signed by one instance "
    "would not verify in another)",
    Need.LOG_STREAM: "a batching S3 sink in this process",
    Need.START_ROLLOUTS: "a rollout thread in this process",
    Need.RUN_TRAINING: "a training thread in this process",
}
"""What local mode uses instead; aws mode never does."""


def required_in_aws(needs: Iterable[Need]) -> dict[str, str | None]:
    """Variable name -> the value it must have (None: any non-empty value) in aws for a process
    with `needs`."""
    out: dict[str, str | None] = {v.name: None for v in REQUIRED_IN_AWS}
    for need in needs:
        out |= {v.name: ("ecs" if v is JOB_RUNNER else None) for v in NEEDS[need]}
    return out


def aws_runtime(env: Mapping[str, str]) -> str | None:
    """"AWS Lambda" when this process runs there, else None."""
    if env.get(LAMBDA_MARKER) or env.get(EXECUTION_ENV, "").startswith("AWS_Lambda"):
        return "AWS Lambda"
    return None


@dataclass(frozen=True)
class EcsTaskConfig:
    """Where the ECS job runner starts training tasks."""

    cluster: str
    task_definition: str
    subnets: tuple[str, ...]
    security_group: str | None
    container: str


@dataclass(frozen=True)
class TaskJob:
    """The job a training task runs (its per-task environment)."""

    job_id: str
    tenant_id: str
    agent_type: str


class _Reader:
    """Reads variables from `env`, collecting every problem instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.problems: list[str] = []

    def text(self, var: Variable) -> str | None:
        value = self._env.get(var.name, "").strip()
        return value or var.default

    def given(self, var: Variable) -> str | None:
        """The value only if the environment sets it (no default)."""
        return self._env.get(var.name, "").strip() or None

    def choice(self, var: Variable, allowed: tuple[str, ...]) -> str | None:
        value = self.given(var)
        if value is not None and value not in allowed:
            self.problems.append(f"{var.name}={value!r} must be one of {', '.join(allowed)}")
            return None
        return value

    def integer(self, var: Variable, minimum: int) -> int:
        assert var.default is not None
        raw = self.text(var) or var.default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{var.name}={raw!r} is not an integer")
            return int(var.default)
        if value < minimum:
            self.problems.append(f"{var.name}={raw!r} must be at least {minimum}")
        return value

    def seconds(self, var: Variable, *, positive: bool) -> float:
        assert var.default is not None
        raw = self.text(var) or var.default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{var.name}={raw!r} is not a number of seconds")
            return float(var.default)
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            bound = "greater than 0" if positive else "at least 0"
            self.problems.append(f"{var.name}={raw!r} must be a finite number {bound}")
            return float(var.default)
        return value


@dataclass(frozen=True)
class Settings:
    mode: Mode
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
    health_source: HealthSource
    job_runner: RunnerKind | None
    """None only in aws without `POLICYHUB_JOB_RUNNER`: this process cannot start jobs."""
    min_new_interactions: int
    training_window_hours: int
    ecs_task: EcsTaskConfig | None
    """Set exactly when `job_runner` is ecs."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        r = _Reader(env)
        runtime = aws_runtime(env)
        said = r.choice(MODE, tuple(m.value for m in Mode))
        if runtime is not None and said == Mode.LOCAL:
            r.problems.append(
                f"{MODE.name}=local inside {runtime}: the local stand-ins serve one process on a "
                "developer's machine; remove it"
            )
        mode = Mode.AWS if runtime is not None or said == Mode.AWS else Mode.LOCAL
        aws = mode is Mode.AWS
        if aws:
            missing = [v.name for v in REQUIRED_IN_AWS if r.given(v) is None]
            if missing:
                r.problems.append(f"{', '.join(missing)} not set (no default names in aws)")
            if r.given(CURSOR_SECRET) is not None:
                r.problems.append(
                    f"{CURSOR_SECRET.name} is for the local stack; in aws give the secret's "
                    f"ARN in {CURSOR_SECRET_ARN.name}"
                )
        runner = r.choice(JOB_RUNNER, ("ecs", "local"))
        if aws and runner == "local":
            r.problems.append(
                f"{JOB_RUNNER.name}=local in aws: training jobs would run on a thread of this "
                "function; use ecs"
            )
            runner = None
        job_runner: RunnerKind | None
        if runner == "ecs":
            job_runner = "ecs"
        elif runner == "local" or not aws:
            job_runner = "local"
        else:
            job_runner = None
        ecs_task = _ecs_task(r) if job_runner == "ecs" else None
        source = r.choice(HEALTH_SOURCE, ("cloudwatch", "logs"))
        health_source: HealthSource = "logs" if source == "logs" else "cloudwatch"
        settings = cls(
            mode=mode,
            table_name=r.text(TABLE) or REGISTRY_TABLE.default_name,
            artifact_bucket=r.text(ARTIFACTS) or ARTIFACT_BUCKET.default_name,
            interaction_bucket=r.text(INTERACTIONS) or INTERACTION_BUCKET.default_name,
            max_artifact_bytes=r.integer(MAX_ARTIFACT_BYTES, minimum=1),
            cursor_secret=r.given(CURSOR_SECRET),
            cursor_secret_arn=r.given(CURSOR_SECRET_ARN),
            log_stream=r.given(LOG_STREAM),
            pointer_ttl_seconds=r.seconds(POINTER_TTL_SECONDS, positive=False),
            rollout_state_machine=r.given(ROLLOUT_STATE_MACHINE),
            local_tick_seconds=r.seconds(LOCAL_TICK_SECONDS, positive=True),
            health_source=health_source,
            job_runner=job_runner,
            min_new_interactions=r.integer(MIN_NEW_INTERACTIONS, minimum=1),
            training_window_hours=r.integer(TRAINING_WINDOW_HOURS, minimum=1),
            ecs_task=ecs_task,
        )
        if r.problems:
            raise ConfigurationError(
                f"policyhub configuration ({mode.value} mode): " + "; ".join(r.problems)
            )
        return settings

    def has(self, need: Need) -> bool:
        """Whether `need` is configured for real (not by a local stand-in)."""
        if need is Need.SIGNING:
            return bool(self.cursor_secret_arn or self.cursor_secret)
        if need is Need.LOG_STREAM:
            return self.log_stream is not None
        if need is Need.START_ROLLOUTS:
            return self.rollout_state_machine is not None
        return self.job_runner == "ecs"

    def require(self, *needs: Need) -> None:
        """In aws, raise a `ConfigurationError` naming the variables of every need in `needs`
        that is not configured; locally the stand-ins serve, so this returns."""
        if self.mode is Mode.LOCAL:
            return
        missing = [need for need in needs if not self.has(need)]
        if not missing:
            return
        parts = []
        for need in missing:
            names = ", ".join(
                f"{v.name}=ecs" if v is JOB_RUNNER else v.name for v in NEEDS[need]
            )
            parts.append(f"{names} not set: {need.value} would fall back to {STAND_INS[need]}")
        raise ConfigurationError(
            "policyhub configuration (aws mode): " + "; ".join(parts)
            + ". Inside AWS the service never falls back to a local stand-in."
        )

    @property
    def local_log_sink(self) -> bool:
        """Interaction logs are written by this process's batching S3 sink (object names sort
        by write time, `interaction_logs.local_object_key`)."""
        return self.mode is Mode.LOCAL and self.log_stream is None


def _ecs_task(r: _Reader) -> EcsTaskConfig | None:
    missing = [
        v.name for v in (TRAINING_CLUSTER, TRAINING_TASK_DEFINITION, TRAINING_SUBNETS)
        if r.given(v) is None
    ]  # fmt: skip
    subnets = tuple(s.strip() for s in (r.given(TRAINING_SUBNETS) or "").split(",") if s.strip())
    if not missing and not subnets:
        missing.append(TRAINING_SUBNETS.name)
    if missing:
        r.problems.append(f"{JOB_RUNNER.name}=ecs needs {', '.join(missing)}")
        return None
    return EcsTaskConfig(
        cluster=r.given(TRAINING_CLUSTER) or "",
        task_definition=r.given(TRAINING_TASK_DEFINITION) or "",
        subnets=subnets,
        security_group=r.given(TRAINING_SECURITY_GROUP),
        container=r.text(TRAINING_CONTAINER) or "training",
    )


def task_job(env: Mapping[str, str] | None = None) -> TaskJob:
    """The training task's job, from the variables `EcsJobRunner` sets on each task."""
    r = _Reader(os.environ if env is None else env)
    values = {v: r.given(v) for v in (JOB_ID, TENANT_ID, AGENT_TYPE)}
    missing = [v.name for v, value in values.items() if value is None]
    if missing:
        raise ConfigurationError(f"the training task needs {', '.join(missing)}")
    return TaskJob(values[JOB_ID] or "", values[TENANT_ID] or "", values[AGENT_TYPE] or "")


@cache
def settings() -> Settings:
    return Settings.from_env()


def check_at_cold_start(needs: Iterable[Need] = ()) -> None:
    """Inside Lambda, load the settings now and require `needs`: a misconfigured function fails
    its init with the variables named, instead of its first request. Elsewhere nothing happens
    here (tests and the local stack set their environment after importing handlers)."""
    if aws_runtime(os.environ) is not None:
        settings().require(*needs)
