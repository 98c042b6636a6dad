"""The Lambda REQUEST authorizer for `Authorization: Bearer <key>`.

Its Allow covers the whole API stage, so API Gateway may cache the result across routes; the
tier and role each route needs are checked by the route's own handler from the route table.
"""

from __future__ import annotations

from typing import Any

from policyhub.api import container


class Unauthorized(Exception):  # noqa: N818 - API Gateway needs this exact message
    """Raised with the message `Unauthorized`, which API Gateway answers with 401."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def _header(headers: dict[str, str] | None, name: str) -> str | None:
    for k, v in (headers or {}).items():
        if k.lower() == name:
            return v
    return None


def stage_wide_resource(method_arn: str) -> str:
    """`arn:…:api/stage/GET/v1/x` → `arn:…:api/stage/*/*`."""
    api, stage = method_arn.split("/")[:2]
    return f"{api}/{stage}/*/*"


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    principal = container.keys().authenticate(_header(event.get("headers"), "authorization"))
    if principal is None:
        raise Unauthorized
    return {
        "principalId": principal.key_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": stage_wide_resource(event["methodArn"]),
                }
            ],
        },
        "context": principal.as_context(),
    }
