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
class Link:
    """An OpenAPI link from a route's response to another operation (issue 14): where the
    id a response carries can be used next."""

    name: str
    status: int
    """The response status that carries the value."""
    operation: str
    """The route name (operationId) the link leads to."""
    parameters: tuple[tuple[str, str], ...]
    """(parameter, runtime expression), e.g. ("rollout_id", "$response.body#/rollout_id")."""
    description: str


@dataclass(frozen=True)
class SuccessResponse:
    """A success response of a route that answers with more than one (promote: 200 or 202)."""

    status: int
    description: str
    model: str
    """`module:Model` of its body."""


def _from_body(*fields: str) -> tuple[tuple[str, str], ...]:
    return tuple((f, f"$response.body#/{f}") for f in fields)


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
    """Hot path: the handler validates with the body's model directly instead of the resolver
    (the same models and envelope; docs/decisions/007-direct-rank-path.md; the rank body is
    decoded by msgspec when valid, decision 122)."""
    memory_mb: int = 512
    timeout_seconds: int = 10
    needs: frozenset[Need] = frozenset()
    """Capabilities with a local stand-in this route uses (`policyhub.settings.Need`): in AWS
    its function refuses to start without their variables, and the stack must give it them
    (`infra/stack/catalog.py` grants the same; tests/infra checks both)."""
    errors: tuple[str, ...] = ()
    """Error codes (domain.errors.ERROR_TABLE) its endpoint and services answer with, beyond
    those every route of its kind has (auth, body, parameters, cursors, throttling, outages:
    `policyhub.api.resolver.error_codes`). The OpenAPI document lists them per status."""
    links: tuple[Link, ...] = ()
    responses: tuple[SuccessResponse, ...] = ()
    """Success responses when there is more than one; else `status_code` with the endpoint's
    return type."""

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
CHANGES = ("concurrent_change",)  # a write that lost a race on the revision counter
PROMOTE_CONFLICTS = ("rollout_active", "experiment_active", "not_promotable", "already_production")
BY_VERSION = (("agent_type", "$response.body#/agent_type"),)
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
    _r(
        "get_policy",
        "GET",
        "/v1/policies/{version}",
        "policies:get_policy",
        "One policy version.",
        errors=("version_not_found",),
    ),
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
        errors=("invalid_artifact", *CHANGES),
        links=(
            Link(
                "GetRegisteredVersion",
                201,
                "get_policy",
                (*_from_body("version"), *BY_VERSION),
                "The version just registered.",
            ),
        ),
    ),
    _r(
        "promote_policy",
        "POST",
        "/v1/policies/promote",
        "deployments:promote",
        "Promote a candidate (safe, canary or immediate).",
        **ADMIN,
        needs=frozenset({Need.START_ROLLOUTS}),
        errors=("version_not_found", *PROMOTE_CONFLICTS, *CHANGES),
        responses=(
            SuccessResponse(
                200,
                "`immediate`: production has moved.",
                "policyhub.api.models:PromotionResponse",
            ),
            SuccessResponse(
                202,
                "`safe` or `canary`: the rollout has started; follow it by its `rollout_id`.",
                "policyhub.domain.rollout:Rollout",
            ),
        ),
        links=(
            Link(
                "GetRollout",
                202,
                "get_rollout",
                (*_from_body("rollout_id"), *BY_VERSION),
                "The rollout just started, with every step as it happens.",
            ),
            Link(
                "AbortRollout",
                202,
                "abort_rollout",
                (*_from_body("rollout_id"), *BY_VERSION),
                "Stop the rollout just started.",
            ),
            Link(
                "GetPromotedVersion",
                200,
                "get_policy",
                (*_from_body("version"), *BY_VERSION),
                "The version now in production.",
            ),
        ),
    ),
    _r(
        "rollback_policy",
        "POST",
        "/v1/policies/rollback",
        "deployments:rollback",
        "Restore a previous production version at once.",
        **ADMIN,
        errors=(
            "version_not_found",
            "not_rollbackable",
            "already_production",
            "feature_schema_mismatch",
            *CHANGES,
        ),
        links=(
            Link(
                "GetRestoredVersion",
                200,
                "get_policy",
                (*_from_body("version"), *BY_VERSION),
                "The version now in production.",
            ),
        ),
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
        errors=("feature_dimension_mismatch",),
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
        errors=("decision_not_found",),
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
        errors=CHANGES,
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
        errors=("rollout_not_found",),
    ),
    _r(
        "abort_rollout",
        "POST",
        "/v1/policies/rollouts/{rollout_id}/abort",
        "rollouts:abort_rollout",
        "Stop a rollout; traffic returns to production.",
        tag="rollouts",
        **ADMIN,
        errors=("rollout_not_found", "conflict", *CHANGES),
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
        errors=(
            "version_not_found",
            "rollout_active",
            "experiment_active",
            "not_promotable",
            "feature_dimension_mismatch",
            *CHANGES,
        ),
        links=(
            Link(
                "GetExperiment",
                201,
                "get_experiment",
                (*_from_body("experiment_id"), *BY_VERSION),
                "The experiment just started, with its results so far.",
            ),
            Link(
                "StopExperiment",
                201,
                "stop_experiment",
                (*_from_body("experiment_id"), *BY_VERSION),
                "Stop the experiment just started.",
            ),
        ),
    ),
    _r(
        "get_experiment",
        "GET",
        "/v1/policies/experiments/{experiment_id}",
        "experiments:get_experiment",
        "An experiment with per-arm results, winner and sample-ratio check.",
        tag="experiments",
        errors=("experiment_not_found",),
    ),
    _r(
        "stop_experiment",
        "POST",
        "/v1/policies/experiments/{experiment_id}/stop",
        "experiments:stop_experiment",
        "Stop an experiment; its results are frozen and production serves again.",
        tag="experiments",
        **ADMIN,
        errors=("experiment_not_found", "conflict", *CHANGES),
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
        errors=("insufficient_data", "job_active", *CHANGES),
        links=(
            Link(
                "GetTrainingJob",
                202,
                "get_training_job",
                _from_body("job_id"),
                "The job just started; it names its candidate once it succeeds.",
            ),
        ),
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
        errors=("job_not_found",),
    ),
    _r(
        "compare_policies",
        "POST",
        "/v1/policies/compare",
        "compare:compare",
        "Compare two versions by off-policy evaluation.",
        memory_mb=3008,
        timeout_seconds=29,
        errors=("version_not_found", "feature_dimension_mismatch"),
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
