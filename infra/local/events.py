"""API Gateway (REST, proxy integration) events, as AWS would hand them to our Lambdas.

The local API server and the integration tests build events here, so both exercise exactly
what the handlers see in AWS.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from policyhub.api.routes import Route

REGION = "us-east-1"
ACCOUNT = "000000000000"
API_ID = "local"
STAGE = "local"


def method_arn(route: Route, path: str) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{STAGE}/{route.method}{path}"


def proxy_event(
    route: Route,
    path: str,
    path_params: dict[str, str],
    *,
    headers: dict[str, str] | None = None,
    query: dict[str, list[str]] | None = None,
    body: bytes | str | None = None,
    authorizer: dict[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    request_id: str | None = None,
) -> dict[str, Any]:
    headers = dict(headers or {})
    is_b64 = False
    text: str | None
    if isinstance(body, bytes):
        try:
            text = body.decode()
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
    else:
        text = body
    request_id = request_id or uuid.uuid4().hex
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": route.method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route.path,
            "httpMethod": route.method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": request_id,
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "identity": {"sourceIp": source_ip},
            **({"authorizer": authorizer} if authorizer is not None else {}),
        },
        "body": text or None,
        "isBase64Encoded": is_b64,
    }


def authorizer_event(route: Route, proxy: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": method_arn(route, proxy["path"]),
        "resource": proxy["resource"],
        "path": proxy["path"],
        "httpMethod": proxy["httpMethod"],
        "headers": proxy["headers"],
        "queryStringParameters": proxy["queryStringParameters"],
        "pathParameters": proxy["pathParameters"],
        "requestContext": proxy["requestContext"],
    }


class LambdaContext:
    """The attributes of Lambda's context object that our code and Powertools read."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = uuid.uuid4().hex
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
