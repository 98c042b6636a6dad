"""What API Gateway does in front of our Lambdas: route, authorize, invoke, answer.

Gateway-level refusals (no route, 401 from the authorizer, body over 10 MB) use the same
envelope as the gateway responses the CDK stack configures.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from infra.local.events import LambdaContext, authorizer_event, proxy_event
from infra.local.functions import load_handler
from policyhub.api.authorizer import Unauthorized
from policyhub.api.errors import proxy_error
from policyhub.api.routes import allowed_methods, match
from policyhub.domain.errors import PolicyHubError

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024
AUTHORIZER = "authorizer"


@dataclass
class GatewayResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    events: list[dict[str, Any]] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


def _from_proxy(result: dict[str, Any]) -> GatewayResponse:
    body = result.get("body") or ""
    raw = body.encode() if isinstance(body, str) else body
    if result.get("isBase64Encoded"):
        import base64

        raw = base64.b64decode(raw)
    headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
    for k, values in (result.get("multiValueHeaders") or {}).items():
        headers[k] = ", ".join(str(v) for v in values)
    return GatewayResponse(int(result.get("statusCode", 200)), headers, raw)


def _refuse(err: PolicyHubError, request_id: str) -> GatewayResponse:
    return _from_proxy(proxy_error(err, request_id))


def _no_route(method: str, path: str, request_id: str) -> GatewayResponse:
    """A path no route has is 404 `not_found`; a path the route table has, asked with a method
    it does not serve (TRACE, HEAD, OPTIONS, a GET on a POST route...), 405
    `method_not_allowed` with `Allow` naming the methods it does serve."""
    methods = allowed_methods(path)
    if not methods:
        return _refuse(PolicyHubError("not_found", f"no route {method} {path}"), request_id)
    return _from_proxy(
        proxy_error(
            PolicyHubError(
                "method_not_allowed",
                f"{path} does not serve {method}; it serves {', '.join(methods)}",
            ),
            request_id,
            {"Allow": ", ".join(methods)},
        )
    )


def invoke(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    query: dict[str, list[str]] | None = None,
    body: bytes | None = None,
    source_ip: str = "127.0.0.1",
) -> GatewayResponse:
    request_id = uuid.uuid4().hex
    if body is not None and len(body) > API_GATEWAY_MAX_BODY:
        return _refuse(
            PolicyHubError("payload_too_large", "request body is larger than 10 MB"), request_id
        )
    found = match(method.upper(), path)
    if found is None:
        return _no_route(method.upper(), path, request_id)
    route, params = found
    event = proxy_event(
        route,
        path,
        params,
        headers=headers,
        query=query,
        body=body,
        source_ip=source_ip,
        request_id=request_id,
    )
    if route.auth:
        try:
            decision = load_handler(AUTHORIZER)(
                authorizer_event(route, event), LambdaContext(AUTHORIZER)
            )
        except Unauthorized:
            return _refuse(
                PolicyHubError("unauthorized", "missing, unknown or revoked API key"), request_id
            )
        except Exception:  # API Gateway's AUTHORIZER_FAILURE: the key could not be checked
            return _refuse(
                PolicyHubError(
                    "service_unavailable",
                    "could not check the API key right now; retry with backoff",
                ),
                request_id,
            )
        statement = decision["policyDocument"]["Statement"][0]
        if statement["Effect"] != "Allow":
            return _refuse(PolicyHubError("forbidden", "access denied"), request_id)
        event["requestContext"]["authorizer"] = {
            **decision.get("context", {}),
            "principalId": decision["principalId"],
        }
    result = load_handler(route.name)(event, LambdaContext(route.name))
    return _from_proxy(result)
