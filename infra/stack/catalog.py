"""Which Lambda functions exist and what each may touch.

Route functions come from the route table (`policyhub.api.routes.ROUTES`); what each route may
touch is written here, per route, so a new route is a conscious one-line decision about its
permissions (synth stops with a clear message when a route has no entry). Lambda functions that
are not routes (the authorizer, the training schedule, the rollout controller, the alarm-rollback
handler) are `AUTHORIZER` and `WORKER_FUNCTIONS`; directories under `functions/` that are not
Lambda functions at all (the training container) are `CONTAINER_TASKS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from policyhub.api.routes import ROUTES, Route
from policyhub.settings import Need


class Level(StrEnum):
    NONE = "none"
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Access:
    table: Level = Level.READ
    artifacts: Level = Level.NONE
    interactions: Level = Level.NONE
    signing_secret: bool = False
    """Signs or verifies pagination cursors (routes that list) or decision ids (rank,
    feedback) with the HMAC secret; without it each container would sign with its own key."""
    log_stream: bool = False
    """Puts decision/feedback records on the Firehose stream (and dead-letters what the stream
    refuses into the interaction bucket's dead-letter prefix)."""
    rollout_alarms: bool = False
    """Creates or deletes the per-rollout CloudWatch alarms (`policyhub-rollout-*`,
    `policyhub.adapters.cloudwatch_alarms`): every code path that starts or ends a rollout."""
    start_rollouts: bool = False
    """Starts the rollout state machine (`POLICYHUB_ROLLOUT_STATE_MACHINE`,
    `policyhub.adapters.workflows.StepFunctionsStarter`)."""
    health_metrics: bool = False
    """Reads rollout health from CloudWatch (`cloudwatch:GetMetricData` over the rank function's
    health metrics, `POLICYHUB_HEALTH_SOURCE=cloudwatch`, `policyhub.adapters.cloudwatch_health`)
    instead of the interaction logs (decisions 081, 119)."""
    run_training: bool = False
    """Runs the training task on ECS Fargate (`POLICYHUB_JOB_RUNNER=ecs` and the
    `POLICYHUB_TRAINING_*` settings of `policyhub.settings`)."""

    @property
    def needs(self) -> frozenset[Need]:
        """The capabilities these grants stand for: in AWS the function's settings require
        their variables (`policyhub.settings.NEEDS`), and its code declares the same needs
        (a route's `needs`, a worker handler's `NEEDS`; tests/infra checks both)."""
        flags = {
            Need.SIGNING: self.signing_secret,
            Need.LOG_STREAM: self.log_stream,
            Need.START_ROLLOUTS: self.start_rollouts,
            Need.RUN_TRAINING: self.run_training,
        }
        return frozenset(need for need, on in flags.items() if on)


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    """Directory `functions/<name>/`, entry point `handler.handler`."""
    access: Access
    memory_mb: int = 512
    timeout_seconds: int = 10
    description: str = ""


READ = Access(table=Level.READ)
WRITE = Access(table=Level.WRITE)
LISTING = Access(table=Level.READ, signing_secret=True)
# Starting, advancing, ending or undoing a rollout (services/rollouts.py): the registry
# transition plus the per-rollout alarms it creates or deletes.
ROLLOUT_WRITE = Access(table=Level.WRITE, rollout_alarms=True)

ROUTE_ACCESS: dict[str, Access] = {
    "health": Access(table=Level.NONE),
    "openapi": Access(table=Level.NONE),
    # Shows the active experiment with its live results, computed from the logs.
    "get_status": Access(table=Level.READ, interactions=Level.READ),
    "list_policies": LISTING,
    "get_policy": READ,
    "register_policy": Access(table=Level.WRITE, artifacts=Level.WRITE),
    # immediate: registry transition; safe/canary: the rollout, its alarms and its execution.
    "promote_policy": Access(table=Level.WRITE, rollout_alarms=True, start_rollouts=True),
    # Aborts the active rollout first (its alarms go), then moves production back.
    "rollback_policy": ROLLOUT_WRITE,
    "list_audit": LISTING,
    "get_constraints": READ,
    "put_constraints": WRITE,
    "rank": Access(
        table=Level.READ, artifacts=Level.READ, signing_secret=True, log_stream=True
    ),
    # Writes: Powertools idempotency records make repeated feedback a no-op.
    "feedback": Access(table=Level.WRITE, signing_secret=True, log_stream=True),
    "list_rollouts": LISTING,
    "get_rollout": READ,
    "abort_rollout": ROLLOUT_WRITE,
    # Experiment results are computed from the decision and feedback logs since its start.
    "start_experiment": Access(table=Level.WRITE, interactions=Level.READ),
    "get_experiment": Access(table=Level.READ, interactions=Level.READ),
    "stop_experiment": Access(table=Level.WRITE, interactions=Level.READ),
    # Counts new interactions in the logs, writes the job and its guard; starts the ECS task.
    "train_policy": Access(table=Level.WRITE, interactions=Level.READ, run_training=True),
    "list_training_jobs": LISTING,
    "get_training_job": READ,
    "compare_policies": Access(table=Level.READ, artifacts=Level.READ, interactions=Level.READ),
}

AUTHORIZER = FunctionSpec(
    "authorizer",
    Access(table=Level.READ),
    memory_mb=256,
    timeout_seconds=5,
    description="REQUEST authorizer: Bearer API key -> tenant, tier, role.",
)

TRAINING_SCHEDULE = FunctionSpec(
    "training_schedule",
    Access(table=Level.WRITE, interactions=Level.READ, run_training=True),
    memory_mb=1769,  # counts each agent's new interactions in the logs
    timeout_seconds=900,
    description="Every 6 hours: start training for each agent with enough new interactions.",
)
ROLLOUT_CONTROLLER = FunctionSpec(
    "rollout_controller",
    # Judges a step from the CloudWatch health metrics (decision 119): no log reads, so neither
    # the interaction bucket nor a vCPU to parse a step's logs (decision 081's interim).
    Access(table=Level.WRITE, health_metrics=True, rollout_alarms=True),
    memory_mb=512,
    timeout_seconds=60,  # one or two GetMetricData calls and a few registry writes
    description="Rollout workflow task: judge the current step and apply the decision.",
)
ROLLOUT_ALARM = FunctionSpec(
    "rollout_alarm",
    ROLLOUT_WRITE,
    memory_mb=512,
    timeout_seconds=30,
    description="EventBridge target: a per-rollout alarm in ALARM rolls the rollout back.",
)

# Functions that are not API routes. Add one FunctionSpec per new worker function; the stack
# creates its role, log group and environment the same way as for routes.
WORKER_FUNCTIONS: tuple[FunctionSpec, ...] = (TRAINING_SCHEDULE, ROLLOUT_CONTROLLER, ROLLOUT_ALARM)

# Directories under functions/ that are container images, not Lambda functions.
TRAINING_TASK = "training_task"
CONTAINER_TASKS: tuple[str, ...] = (TRAINING_TASK,)
# The training container (services/training.py `run`): reads the window's logs, registers the
# candidate (artifact + version + lineage), finishes the job and moves the agent's cursor.
TRAINING_TASK_ACCESS = Access(table=Level.WRITE, artifacts=Level.WRITE, interactions=Level.READ)


class MissingRouteAccessError(KeyError):
    pass


def route_spec(route: Route) -> FunctionSpec:
    try:
        access = ROUTE_ACCESS[route.name]
    except KeyError:
        raise MissingRouteAccessError(
            f"route {route.name!r} has no entry in infra/stack/catalog.py ROUTE_ACCESS; "
            "say which table/bucket/secret/stream access it needs"
        ) from None
    return FunctionSpec(
        route.name,
        access,
        memory_mb=route.memory_mb,
        timeout_seconds=route.timeout_seconds,
        description=f"{route.method} {route.path}: {route.summary}",
    )


def all_function_specs() -> tuple[FunctionSpec, ...]:
    return (AUTHORIZER, *(route_spec(r) for r in ROUTES), *WORKER_FUNCTIONS)
