"""The API reads every body as JSON, whatever `Content-Type` says (found by schemathesis,
issue 14): a multipart type without a boundary was a 500, a form type was parsed as a form."""

from __future__ import annotations

import json

import pytest

from infra.local.gateway import invoke
from tests.support.api import Api

CONTENT_TYPES = [
    "multipart/form-data",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application/json; charset=utf-8",
]


def _put(api: Api, content_type: str, body: bytes) -> tuple[int, dict[str, object]]:
    r = invoke(
        "PUT",
        "/v1/policies/constraints",
        headers={"Authorization": f"Bearer {api.key}", "content-type": content_type},
        body=body,
    )
    return r.status, r.json()


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_a_json_body_is_read_as_json_whatever_its_content_type(
    admin: Api, content_type: str
) -> None:
    status, body = _put(admin, content_type, json.dumps({"max_rank_lift": 2}).encode())
    assert status == 200, body
    assert body["max_rank_lift"] == 2


@pytest.mark.parametrize("content_type", CONTENT_TYPES[:3])
def test_a_body_that_is_not_json_is_400_malformed_json(admin: Api, content_type: str) -> None:
    status, body = _put(admin, content_type, b"max_rank_lift=2")
    assert status == 400, body
    assert body["error"]["code"] == "malformed_json"  # type: ignore[index]
