"""Powertools' validating resolver for the routes that use it, and the OpenAPI document.

Imported only by the functions that resolve through Powertools (not the rank hot path) and by
`GET /v1/openapi.json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from policyhub.api.errors import JSON, envelope, from_validation_errors
from policyhub.api.routes import ROUTES, Route, endpoint_of
from policyhub.domain.errors import ERROR_TABLE, PolicyHubError

logger = Logger(service="policyhub")
API_TITLE = "policyhub"
API_VERSION = "1.0.0"


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


def openapi_document() -> dict[str, Any]:
    """The whole API's OpenAPI document, generated from the route table and endpoints."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    app = build_resolver(ROUTES)
    doc: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=API_TITLE,
            version=API_VERSION,
            summary="Versioned RL ranking policies, moved into production safely.",
            security_schemes={"bearer": HTTPBearer(description="ph_live_<id>_<secret>")},
            security=[{"bearer": []}],
        )
    )
    public = {r.resolver_path.replace("<", "{").replace(">", "}") for r in ROUTES if not r.auth}
    # Every error is API.md's envelope (not Powertools' HTTPValidationError), with any status of
    # the error table; clients and fuzzers can then check error bodies against the document.
    doc.setdefault("components", {}).setdefault("schemas", {})["ErrorEnvelope"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "request_id", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "request_id": {"type": "string"},
                    "details": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["field", "issue"],
                            "properties": {
                                "field": {"type": "string"},
                                "issue": {"type": "string"},
                            },
                        },
                    },
                },
            }
        },
    }
    error_response = {
        "description": "Error (API.md envelope)",
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }
    statuses = sorted({s for s in ERROR_TABLE.values() if s != 405})
    for path, ops in doc.get("paths", {}).items():
        for op in ops.values():
            if path in public:
                op["security"] = []
            for status in statuses:
                op.setdefault("responses", {})[str(status)] = error_response
    return doc
