"""The one route table: method, path, Lambda function, required tier and role.

It feeds the CDK API (one Lambda per route), the Lambda handlers (auth and body limits),
the local API server and the OpenAPI document. No route is written anywhere else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from policyhub.domain.access import Role, Tier
from policyhub.settings import Need

KIB = 1024
DEFAULT_MAX_BODY = 64 * KIB


@dataclass(frozen=True)
class Route:
    name: str
    """Lambda function name and the directory `functions/<name>/`."""
    method: str
    path: str
    """API Gateway style: `/v1/policies/{version}`."""
    endpoint: str
    """`module:function` of the endpoint inside `policyhub.api.endpoints`."""
    summary: str
    auth: bool = True
    tier: Tier = Tier.PRO
    role: Role = Role.MEMBER
    max_body_bytes: int = DEFAULT_MAX_BODY
    status_code: int = 200
    tag: str = "policies"
    direct: bool = False
    """Hot path: the handler validates with pydantic directly instead of the resolver
    (the same models and envelope; docs/decisions/007-direct-rank-path.md)."""
    memory_mb: int = 512
    timeout_seconds: int = 10
    needs: frozenset[Need] = frozenset()
    """Capabilities with a local stand-in this route uses (`policyhub.settings.Need`): in AWS
    its function refuses to start without their variables, and the stack must give it them
    (`infra/stack/catalog.py` grants the same; tests/infra checks both)."""

    @property
    def resolver_path(self) -> str:
        """The path in Powertools' syntax (`<param>` instead of `{param}`)."""
        return self.path.replace("{", "<").replace("}", ">")

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(seg[1:-1] for seg in self.path.split("/") if seg.startswith("{"))


def _r(name: str, method: str, path: str, endpoint: str, summary: str, **kw: object) -> Route:
    return Route(name, method, path, f"policyhub.api.endpoints.{endpoint}", summary, **kw)  # type: ignore[arg-type]


ADMIN = {"role": Role.ADMIN}
LISTS = {"needs": frozenset({Need.SIGNING})}  # pagination cursors are signed
SERVES = {"needs": frozenset({Need.SIGNING, Need.LOG_STREAM})}  # decision ids, decision logs

ROUTES: tuple[Route, ...] = (
    _r(
        "health",
        "GET",
        "/v1/health",
        "service:health",
        "Liveness of the API.",
        auth=False,
        tag="service",
    ),
    _r(
        "openapi",
        "GET",
        "/v1/openapi.json",
        "service:openapi",
        "This API's OpenAPI document.",
        auth=False,
        tag="service",
    ),
    _r(
        "get_status",
        "GET",
        "/v1/policies/status",
        "policies:get_status",
        "Current production policy, rollout and experiment of an agent.",
    ),
    _r(
        "list_policies",
        "GET",
        "/v1/policies",
        "policies:list_policies",
        "Policy versions of an agent, newest first.",
        **LISTS,
    ),
    _r("get_policy", "GET", "/v1/policies/{version}", "policies:get_policy", "One policy version."),
    _r(
        "register_policy",
        "POST",
        "/v1/policies",
        "policies:register_policy",
        "Register an externally trained ONNX policy as a candidate.",
        max_body_bytes=6 * 1024 * KIB - 64 * KIB,  # Lambda's 6 MiB invoke limit, with headroom
        memory_mb=1024,
        timeout_seconds=29,
        status_code=201,
        **ADMIN,
    ),
    _r(
        "promote_policy",
        "POST",
        "/v1/policies/promote",
        "deployments:promote",
        "Promote a candidate (safe, canary or immediate).",
        **ADMIN,
        needs=frozenset({Need.START_ROLLOUTS}),
    ),
    _r(
        "rollback_policy",
        "POST",
        "/v1/policies/rollback",
        "deployments:rollback",
        "Restore a previous production version at once.",
        **ADMIN,
    ),
    _r(
        "rank",
        "POST",
        "/v1/rank",
        "serving:rank",
        "Rank candidates with the policy that serves this request.",
        tier=Tier.FREE,
        max_body_bytes=2 * 1024 * KIB,
        memory_mb=1024,
        tag="serving",
        direct=True,
        **SERVES,
    ),
    _r(
        "feedback",
        "POST",
        "/v1/feedback",
        "serving:feedback",
        "Report how a ranking decision went.",
        tier=Tier.FREE,
        status_code=202,
        tag="serving",
        **SERVES,
    ),
    _r(
        "get_constraints",
        "GET",
        "/v1/policies/constraints",
        "constraints:get_constraints",
        "Constitutional constraints of an agent.",
    ),
    _r(
        "put_constraints",
        "PUT",
        "/v1/policies/constraints",
        "constraints:put_constraints",
        "Replace the constitutional constraints of an agent.",
        **ADMIN,
    ),
    _r(
        "list_rollouts",
        "GET",
        "/v1/policies/rollouts",
        "rollouts:list_rollouts",
        "Rollouts of an agent, newest first.",
        tag="rollouts",
        **LISTS,
    ),
    _r(
        "get_rollout",
        "GET",
        "/v1/policies/rollouts/{rollout_id}",
        "rollouts:get_rollout",
        "One rollout with every step, its numbers and verdict.",
        tag="rollouts",
    ),
    _r(
        "abort_rollout",
        "POST",
        "/v1/policies/rollouts/{rollout_id}/abort",
        "rollouts:abort_rollout",
        "Stop a rollout; traffic returns to production.",
        tag="rollouts",
        **ADMIN,
    ),
    _r(
        "start_experiment",
        "POST",
        "/v1/policies/experiments",
        "experiments:start_experiment",
        "Start an A/B experiment between policy versions.",
        tag="experiments",
        status_code=201,
        **ADMIN,
    ),
    _r(
        "get_experiment",
        "GET",
        "/v1/policies/experiments/{experiment_id}",
        "experiments:get_experiment",
        "An experiment with per-arm results, winner and sample-ratio check.",
        tag="experiments",
    ),
    _r(
        "stop_experiment",
        "POST",
        "/v1/policies/experiments/{experiment_id}/stop",
        "experiments:stop_experiment",
        "Stop an experiment; its results are frozen and production serves again.",
        tag="experiments",
        **ADMIN,
    ),
    _r(
        "list_audit",
        "GET",
        "/v1/policies/audit",
        "audit:list_audit",
        "Audit events of an agent, newest first.",
        tag="audit",
        **LISTS,
    ),
    _r(
        "train_policy",
        "POST",
        "/v1/policies/train",
        "training:train",
        "Start a training job for an agent.",
        status_code=202,
        timeout_seconds=29,
        tag="training",
        needs=frozenset({Need.RUN_TRAINING}),
    ),
    _r(
        "list_training_jobs",
        "GET",
        "/v1/policies/training-jobs",
        "training:list_training_jobs",
        "Training jobs of an agent, newest first.",
        tag="training",
        **LISTS,
    ),
    _r(
        "get_training_job",
        "GET",
        "/v1/policies/training-jobs/{job_id}",
        "training:get_training_job",
        "One training job.",
        tag="training",
    ),
    _r(
        "compare_policies",
        "POST",
        "/v1/policies/compare",
        "compare:compare",
        "Compare two versions by off-policy evaluation.",
        memory_mb=3008,
        timeout_seconds=29,
    ),
)

ROUTES_BY_NAME: dict[str, Route] = {r.name: r for r in ROUTES}


def route(name: str) -> Route:
    return ROUTES_BY_NAME[name]


def _resource(path: str) -> tuple[str, dict[str, str]] | None:
    """The resource (path template) a path names, the way API Gateway picks it: among the
    templates that fit, the one with the most static segments, whatever the method."""
    parts = path.rstrip("/").split("/") if path != "/" else [""]
    best: tuple[int, str, dict[str, str]] | None = None
    for template in dict.fromkeys(r.path for r in ROUTES):
        tmpl = template.split("/")
        if len(tmpl) != len(parts):
            continue
        params: dict[str, str] = {}
        static = 0
        for t, p in zip(tmpl, parts, strict=True):
            if t.startswith("{"):
                if not p:
                    break
                params[t[1:-1]] = p
            elif t != p:
                break
            else:
                static += 1
        else:
            if best is None or static > best[0]:
                best = (static, template, params)
    return None if best is None else (best[1], best[2])


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """Find the route for a request the way API Gateway does: first the resource (static
    segments beat params), then the method on it. `GET /v1/policies/promote` is the promote
    resource asked with a method it lacks (None), not version `promote`."""
    found = _resource(path)
    if found is None:
        return None
    template, params = found
    for r in ROUTES:
        if r.path == template and r.method == method:
            return r, params
    return None


def allowed_methods(path: str) -> list[str]:
    """The methods the resource `path` names serves; empty when no resource fits."""
    found = _resource(path)
    return sorted({r.method for r in ROUTES if found is not None and r.path == found[0]})


def endpoint_of(route: Route) -> Callable[..., Any]:
    module, _, name = route.endpoint.partition(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return fn
