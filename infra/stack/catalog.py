"""Which Lambda functions exist and what each may touch.

Route functions come from the route table (`policyhub.api.routes.ROUTES`); what each route may
touch is written here, per route, so a new route is a conscious one-line decision about its
permissions (synth stops with a clear message when a route has no entry). Functions that are not
routes (the authorizer; later the training schedule, the rollout controller, the alarm-rollback
handler) are listed in `WORKER_FUNCTIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from policyhub.api.routes import ROUTES, Route


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

ROUTE_ACCESS: dict[str, Access] = {
    "health": Access(table=Level.NONE),
    "openapi": Access(table=Level.NONE),
    "get_status": READ,
    "list_policies": LISTING,
    "get_policy": READ,
    "register_policy": Access(table=Level.WRITE, artifacts=Level.WRITE),
    "promote_policy": WRITE,
    "rollback_policy": WRITE,
    "list_audit": LISTING,
    "get_constraints": READ,
    "put_constraints": WRITE,
    "rank": Access(
        table=Level.READ, artifacts=Level.READ, signing_secret=True, log_stream=True
    ),
    # Writes: Powertools idempotency records make repeated feedback a no-op.
    "feedback": Access(table=Level.WRITE, signing_secret=True, log_stream=True),
    # Counts new interactions in the logs, writes the job and its guard; starts the ECS task.
    "train_policy": Access(table=Level.WRITE, interactions=Level.READ),
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

# Functions that are not API routes. Add one FunctionSpec per new worker function; the stack
# creates its role, log group and environment the same way as for routes.
WORKER_FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        "training_schedule",
        Access(table=Level.WRITE, interactions=Level.READ),
        memory_mb=1024,
        timeout_seconds=300,
        description="Every 6 hours: start training for each agent with enough new interactions.",
    ),
)


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
