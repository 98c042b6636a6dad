"""The local API answers every method and every malformed request in the error envelope, as
API Gateway's edge would: 404 for a path no route has, 405 `method_not_allowed` (with `Allow`)
for a method a known path does not serve, never Python's 501 HTML page (issue 14)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from infra.local.http_server import _Handler


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _call(port: int, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=b"{}" if method not in {"HEAD", "GET"} else None)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("TRACE", "/v1/policies", "GET, POST"),
        ("TRACE", "/v1/health", "GET"),
        ("OPTIONS", "/v1/policies/promote", "POST"),
        ("PATCH", "/v1/policies/constraints", "GET, PUT"),
        ("DELETE", "/v1/policies/v1.2.3", "GET"),
        ("GET", "/v1/policies/rollouts/r-1/abort", "POST"),
        ("FOO", "/v1/rank", "POST"),
    ],
)
def test_a_method_a_known_path_does_not_serve_is_405_in_the_envelope(
    port: int, method: str, path: str, allow: str
) -> None:
    status, headers, body = _call(port, method, path)
    assert status == 405
    assert headers["content-type"] == "application/json"
    assert headers["allow"] == allow
    error = json.loads(body)["error"]
    assert error["code"] == "method_not_allowed"
    assert error["request_id"] == headers["x-request-id"]


@pytest.mark.parametrize("method", ["TRACE", "GET", "POST", "CONNECT"])
def test_any_method_on_an_unknown_path_is_404_in_the_envelope(port: int, method: str) -> None:
    status, headers, body = _call(port, method, "/v1/nothing-here")
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "not_found"


def test_head_gets_the_headers_without_a_body(port: int) -> None:
    status, headers, body = _call(port, "HEAD", "/v1/health")
    assert status == 405 and headers["allow"] == "GET"
    assert int(headers["content-length"]) > 0 and body == b""


def test_a_malformed_request_line_is_400_in_the_envelope(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /v1/health HTTP/9.x\r\n\r\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["error"]["code"] == "bad_request"


def test_the_resource_is_chosen_before_the_method() -> None:
    # API Gateway picks the static resource `promote` first; it has no GET, so no route, even
    # though GET /v1/policies/{version} would fit the path.
    from policyhub.api.routes import allowed_methods, match

    assert match("GET", "/v1/policies/promote") is None
    assert allowed_methods("/v1/policies/promote") == ["POST"]
    found = match("GET", "/v1/policies/v1.2.3")
    assert found is not None and found[0].name == "get_policy"
    assert allowed_methods("/v1/nothing") == []
