"""Powertools' validating resolver for the routes that use it, and the OpenAPI document.

Imported only by the functions that resolve through Powertools (not the rank hot path) and by
`GET /v1/openapi.json`.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Iterable
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from policyhub.api.errors import JSON, envelope, from_validation_errors
from policyhub.api.routes import ROUTES, Route, endpoint_of
from policyhub.domain.access import Role, Tier
from policyhub.domain.errors import ERROR_TABLE, PolicyHubError

logger = Logger(service="policyhub")
API_TITLE = "policyhub"
API_VERSION = "1.0.0"
API_DESCRIPTION = (
    "Keeps versions of reinforcement-learning ranking policies (ONNX scorers) and moves them "
    "into production safely: registry, training, off-policy comparison, shadow, canary, "
    "automatic and instant rollback, A/B experiments. JSON in and out; times are ISO-8601 UTC. "
    "Authenticate with `Authorization: Bearer <key>` (keys look like `ph_live_<id>_<secret>`). "
    "Every error is the envelope `ErrorEnvelope`, with the codes each response lists. Rules "
    "a body must obey that JSON Schema cannot state are listed as `x-rules` on its schema."
)


def _error_response(app: APIGatewayRestResolver, err: PolicyHubError) -> Response[str]:
    request_id = app.current_event.request_context.request_id or "-"
    return Response(
        status_code=err.status,
        content_type=JSON,
        body=json.dumps(envelope(err.code, err.message, request_id, err.details)),
    )


class OwnEventResolver(APIGatewayRestResolver):
    """Keeps the request being resolved on the resolver itself.

    Powertools stores it on the `BaseRouter` class, shared by every resolver of the process.
    In AWS a process serves one invocation at a time; the local stack runs concurrent
    invocations of different functions as threads of one process, where a class-wide event let
    one function validate another's request (decision 097).
    """

    def resolve(self, event: Any, context: Any) -> dict[str, Any]:
        # An instance attribute shadows the class attribute that super().resolve() assigns.
        self.current_event = cast(APIGatewayProxyEvent, self._to_proxy_event(event))
        self.lambda_context = context
        return super().resolve(event, context)


def _model(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _success_responses(r: Route) -> dict[int, OpenAPIResponse] | None:
    """A route with more than one success status documents each with its own body."""
    if not r.responses:
        return None
    return {
        s.status: {"description": s.description, "content": {JSON: {"model": _model(s.model)}}}
        for s in r.responses
    }


def build_resolver(routes: Iterable[Route]) -> OwnEventResolver:
    app = OwnEventResolver(enable_validation=True)
    for r in routes:
        app.route(
            r.resolver_path,
            r.method,
            summary=r.summary,
            operation_id=r.name,
            status_code=r.status_code,
            tags=[r.tag],
            responses=_success_responses(r),
        )(endpoint_of(r))

    @app.exception_handler(PolicyHubError)  # type: ignore[untyped-decorator]
    def _domain(err: PolicyHubError) -> Response[str]:
        return _error_response(app, err)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _validation(err: RequestValidationError) -> Response[str]:
        return _error_response(app, from_validation_errors(err.errors()))

    @app.exception_handler(ResponseValidationError)  # type: ignore[untyped-decorator]
    def _bad_response(err: ResponseValidationError) -> Response[str]:
        logger.error("response failed its own schema", extra={"errors": str(err.errors())})
        return _error_response(
            app,
            PolicyHubError(
                "internal_error", "internal error; quote the request id when you report it"
            ),
        )

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        return _error_response(app, PolicyHubError("not_found", "no such route"))

    return app


ERROR_MEANINGS: dict[str, str] = {
    "malformed_json": "the body is not JSON (or not UTF-8, or nested too deeply)",
    "bad_request": "the request could not be read as HTTP",
    "invalid_cursor": "`cursor` is not a `next_cursor` of this listing",
    "unauthorized": "missing, unknown or revoked API key",
    "forbidden": "the key's tier or role may not call this operation",
    "version_not_found": "no such version of this agent",
    "rollout_not_found": "no such rollout of this agent",
    "job_not_found": "no such training job",
    "experiment_not_found": "no such experiment of this agent",
    "decision_not_found": "no such decision for this tenant",
    "conflict": "it has already ended",
    "concurrent_change": "the agent changed concurrently; read it again and retry",
    "rollout_active": "a rollout of this agent is active",
    "experiment_active": "an experiment of this agent is running",
    "not_promotable": "the version's status does not allow it (the message says why)",
    "already_production": "the version is already in production",
    "not_rollbackable": "only a retired version (or production during a rollout) can be restored",
    "feature_schema_mismatch": "the target takes other features than production; add `force`",
    "insufficient_data": "too few new interactions since the last training; add `force`",
    "job_active": "a training job of this agent is queued or running (the body names it)",
    "payload_too_large": "the body (or the decoded artifact) is larger than allowed",
    "validation_error": "the request does not match this document, or breaks one of its "
    "`x-rules`; `details` names each field",
    "invalid_artifact": "the ONNX model does not load or has the wrong inputs or outputs",
    "feature_dimension_mismatch": "the features do not fit the version's feature schema",
    "throttled": "too many requests; retry with backoff",
    "internal_error": "a fault of the service; quote the request id",
    "service_unavailable": "a dependency is busy or down (or the key could not be checked); "
    "retry with backoff",
}
"""What each error code means, for the document's response descriptions."""

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
REQUEST_ID_HEADER = {
    "x-request-id": {
        "description": "The request's id; also the error envelope's `request_id`.",
        "schema": {"type": "string"},
    }
}


def error_codes(r: Route) -> dict[int, list[str]]:
    """Every error code route `r` can answer with, by status: those of its kind (edge, auth,
    body, parameters, cursor, outages) and its own (`Route.errors`)."""
    params = inspect.signature(endpoint_of(r)).parameters
    codes = ["bad_request", "throttled", "internal_error"]  # the edge; a fault of ours
    if r.auth:
        codes += ["unauthorized", "service_unavailable"]  # no key; the key check failed
        if r.tier is not Tier.FREE or r.role is not Role.MEMBER:
            codes.append("forbidden")
    if r.method in _BODY_METHODS:
        codes += ["malformed_json", "payload_too_large"]
    if params:
        codes.append("validation_error")
    if "cursor" in params:
        codes.append("invalid_cursor")
    codes += r.errors
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):
        by_status.setdefault(ERROR_TABLE[code], []).append(code)
    return {status: sorted(found) for status, found in sorted(by_status.items())}


def _documented_error(codes: list[str]) -> dict[str, Any]:
    return {
        "description": "\n".join(f"- `{c}`: {ERROR_MEANINGS.get(c, c)}" for c in codes),
        "headers": REQUEST_ID_HEADER,
        "content": {
            JSON: {
                "schema": {
                    "allOf": [
                        {"$ref": "#/components/schemas/ErrorEnvelope"},
                        {
                            "type": "object",
                            "properties": {
                                "error": {
                                    "type": "object",
                                    "properties": {"code": {"enum": codes}},
                                }
                            },
                        },
                    ]
                }
            }
        },
    }


def _access(r: Route) -> str:
    if not r.auth:
        return "No API key needed."
    if r.tier is Tier.FREE and r.role is Role.MEMBER:
        return "Any valid API key."
    return f"Needs an API key of tier `{r.tier.value}` and role `{r.role.value}` (or above)."


def openapi_document() -> dict[str, Any]:
    """The whole API's OpenAPI document, generated from the route table and the endpoints'
    models: per operation its success and error statuses (with the error codes each can carry),
    links to the operations its ids lead to, and who may call it."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
    from pydantic import TypeAdapter

    from policyhub.api.models import ErrorEnvelope

    app = build_resolver(ROUTES)
    doc: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=API_TITLE,
            version=API_VERSION,
            summary="Versioned RL ranking policies, moved into production safely.",
            description=API_DESCRIPTION,
            security_schemes={"bearer": HTTPBearer(description="ph_live_<id>_<secret>")},
            security=[{"bearer": []}],
        )
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    envelope = TypeAdapter(ErrorEnvelope).json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(envelope.pop("$defs", {}))
    schemas["ErrorEnvelope"] = envelope
    by_operation = {(r.path, r.method.lower()): r for r in ROUTES}
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            r = by_operation[(path, method)]
            op["description"] = _access(r)
            if not r.auth:
                op["security"] = []
            responses: dict[str, Any] = op.setdefault("responses", {})
            responses.pop("422", None)  # Powertools' HTTPValidationError: we answer the envelope
            for response in responses.values():
                response["headers"] = REQUEST_ID_HEADER
            for link in r.links:
                responses[str(link.status)].setdefault("links", {})[link.name] = {
                    "operationId": link.operation,
                    "parameters": dict(link.parameters),
                    "description": link.description,
                }
            for status, codes in error_codes(r).items():
                responses[str(status)] = _documented_error(codes)
    text = json.dumps(doc["paths"]) + json.dumps(schemas.get("ErrorEnvelope"))
    for unused in ("HTTPValidationError", "ResponseValidationError", "ValidationError"):
        if f'"#/components/schemas/{unused}"' not in text:
            schemas.pop(unused, None)
    return doc
