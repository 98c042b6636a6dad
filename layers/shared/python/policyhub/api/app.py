"""Lambda entry points built from the route table.

Each function's handler is `lambda_handler("<route name>")`: body limit, tier/role from the
route table, Powertools' validating resolver (`api/resolver.py`; the rank route validates with
pydantic directly), the error envelope and `x-request-id`.
"""

from __future__ import annotations

import base64
import typing
import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from policyhub.api.context import set_principal
from policyhub.api.errors import JSON, from_validation_errors, proxy_error
from policyhub.api.routes import ROUTES_BY_NAME, Route, endpoint_of
from policyhub.domain.access import Principal
from policyhub.domain.errors import ErrorDetail, PolicyHubError
from policyhub.invocation import lambda_context
from policyhub.settings import check_at_cold_start

logger = Logger(service="policyhub")
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _principal(event: dict[str, Any]) -> Principal | None:
    ctx = (event.get("requestContext") or {}).get("authorizer") or {}
    try:
        return Principal.from_context(ctx) if "tenant_id" in ctx else None
    except (KeyError, ValueError):
        return None


def _body_size(event: dict[str, Any]) -> int:
    body = event.get("body") or ""
    # isascii() reads a flag CPython keeps; encoding a rank body only to count it took ~15 us.
    ascii_only = isinstance(body, str) and body.isascii()
    size = len(body) if ascii_only or not isinstance(body, str) else len(body.encode())
    return size * 3 // 4 if event.get("isBase64Encoded") else size


def _is_utf8(body_base64: str) -> bool:
    """API Gateway hands over a body that is not UTF-8 base64-encoded; JSON must be UTF-8."""
    try:
        base64.b64decode(body_base64).decode()
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _guard(route: Route, event: dict[str, Any], request_id: str) -> PolicyHubError | None:
    """Limits and access checks that come before any parsing."""
    if _body_size(event) > route.max_body_bytes:
        return PolicyHubError(
            "payload_too_large", f"request body is larger than {route.max_body_bytes} bytes"
        )
    if event.get("isBase64Encoded") and not _is_utf8(event.get("body") or ""):
        return PolicyHubError(
            "malformed_json",
            "the request body is not UTF-8 text",
            [ErrorDetail("body", "not UTF-8")],
        )
    if not route.auth:
        return None
    principal = _principal(event)
    if principal is None:
        return PolicyHubError("unauthorized", "a valid API key is required")
    if not principal.satisfies(route.tier, route.role):
        return PolicyHubError(
            "forbidden",
            f"this operation needs tier {route.tier.value} and "
            f"role {route.role.value}; your key is {principal.tier.value}/"
            f"{principal.role.value}",
        )
    set_principal(principal)
    return None


def _direct(route: Route) -> LambdaHandler:
    """Call a body-only endpoint with its model's validation and serialisation, no resolver
    (the rank body and response by msgspec and orjson: `api/rank_json.py`)."""
    from policyhub.api.rank_json import read_body, write_body

    endpoint = endpoint_of(route)
    hints = typing.get_type_hints(endpoint, include_extras=True)
    body_model: type[BaseModel] = typing.get_args(hints["body"])[0]

    def call(event: dict[str, Any], context: Any) -> dict[str, Any]:
        request_id = event["requestContext"]["requestId"]
        raw = event.get("body") or ""
        if event.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode(errors="replace")
        try:
            body = read_body(body_model, raw)
        except ValidationError as exc:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            return proxy_error(from_validation_errors(errors), request_id)
        try:
            result: BaseModel = endpoint(body=body)
        except PolicyHubError as err:
            return proxy_error(err, request_id)
        return {
            "statusCode": route.status_code,
            "isBase64Encoded": False,
            "headers": {"Content-Type": JSON, "x-request-id": request_id},
            "body": write_body(result),
        }

    return call


_UNAVAILABLE = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling",
    "RequestLimitExceeded", "SlowDown", "ServiceUnavailable", "InternalServerError",
    "InternalFailure", "RequestTimeout", "ServiceUnavailableException",
}
_CONFLICT = {"TransactionConflictException", "TransactionCanceledException"}


def _unhandled(exc: Exception) -> PolicyHubError:
    """An AWS dependency that is throttled or down is a 503 (retry later), a transaction that
    lost a race a 409; anything else is our bug, a 500."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ClientError):
        cause = cause.__cause__ or cause.__context__  # e.g. wrapped by Powertools Idempotency
    response = cause.response if isinstance(cause, ClientError) else {}
    code = response.get("Error", {}).get("Code", "")
    reasons = {r.get("Code") for r in response.get("CancellationReasons", [])}
    if code in _UNAVAILABLE or (code in _CONFLICT and "ThrottlingError" in reasons):
        return PolicyHubError(
            "service_unavailable", "a storage service is busy or unavailable; retry shortly"
        )
    if code in _CONFLICT:
        return PolicyHubError(
            "concurrent_change", "the data changed concurrently; read the current state and retry"
        )
    return PolicyHubError(
        "internal_error", "internal error; quote the request id when you report it"
    )


def lambda_handler(route_name: str) -> LambdaHandler:
    route = ROUTES_BY_NAME[route_name]
    # In AWS a function without the settings its route needs fails its init, naming them.
    check_at_cold_start(route.needs)
    # Only resolver routes load Powertools' event handler and OpenAPI validation (~250 ms of a
    # cold start): the rank function never does (decision 096).
    call = _direct(route) if route.direct else _resolver(route)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        request_id = (event.get("requestContext") or {}).get("requestId") or uuid.uuid4().hex
        event.setdefault("requestContext", {})["requestId"] = request_id
        set_principal(None)
        lambda_context.set(context)
        refused = _guard(route, event, request_id)
        if refused is not None:
            return proxy_error(refused, request_id)
        try:
            response = call(event, context)
        except RecursionError:
            # json.loads (inside Powertools) gives up on deeply nested input: bad input, not ours.
            return proxy_error(
                PolicyHubError("malformed_json", "the request body's JSON is nested too deeply"),
                request_id,
            )
        except Exception as exc:
            logger.exception(
                "unhandled error", extra={"route": route.name, "request_id": request_id}
            )
            return proxy_error(_unhandled(exc), request_id)
        finally:
            set_principal(None)
        headers = response.setdefault("headers", {}) or {}
        headers["x-request-id"] = request_id
        response["headers"] = headers
        return response

    return handler


def _as_json(event: dict[str, Any]) -> None:
    """JSON in, whatever `Content-Type` says, as the rank path reads it: Powertools would parse a
    form or multipart type instead, and a multipart type without a boundary raised a 500
    (found by schemathesis, issue 14). A body that is not JSON is then 400 malformed_json."""
    for name in ("headers", "multiValueHeaders"):
        headers = event.get(name) or {}
        for key in [k for k in headers if k.lower() == "content-type"]:
            del headers[key]
        if event.get(name) is not None:
            headers["Content-Type"] = JSON if name == "headers" else [JSON]


def _resolver(route: Route) -> LambdaHandler:
    from policyhub.api.resolver import build_resolver

    resolve = build_resolver([route]).resolve

    def call(event: dict[str, Any], context: Any) -> dict[str, Any]:
        _as_json(event)
        return resolve(event, context)

    return call
