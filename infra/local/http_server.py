"""The local API on 127.0.0.1: HTTP requests in, API Gateway proxy events to the handlers."""

from __future__ import annotations

import contextlib
import gc
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infra.local.gateway import API_GATEWAY_MAX_BODY, invoke
from policyhub.api.errors import envelope


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "policyhub-local"
    # Headers and body leave in two writes; with Nagle on, the body waits for the client's
    # delayed ACK of the headers: 40 ms added to every keep-alive response (decision 093).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > API_GATEWAY_MAX_BODY:
            self._send(
                413,
                {"Content-Type": "application/json"},
                json.dumps(
                    envelope("payload_too_large", "request body is larger than 10 MB", "-")
                ).encode(),
                close=True,
            )
            return
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items()}
        response = invoke(
            self.command,
            url.path,
            headers=headers,
            query=parse_qs(url.query, keep_blank_values=True) or None,
            body=body,
            source_ip=self.client_address[0],
        )
        self._send(response.status, response.headers, response.body)

    def _send(self, status: int, headers: dict[str, str], body: bytes, close: bool = False) -> None:
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in {"content-length", "connection"}:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":  # a HEAD response has the headers of its body, never the body
            self.wfile.write(body)

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler serves method X with `do_X` and answers every other method with
        # its own 501 HTML page. Every method goes to the gateway instead, which answers the
        # ones no route serves as API Gateway's edge does: 404 or 405 in the error envelope.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # What the base class refuses before any route is looked at (a malformed request line,
        # a URI or headers too long) leaves in the error envelope too, not as an HTML page.
        error = "payload_too_large" if code == 413 else "bad_request"
        status = 413 if code == 413 else 400
        text = message or "the HTTP request could not be parsed"
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # the request line was unreadable: answer in 1.1
            self.request_version = self.protocol_version
        with contextlib.suppress(OSError):  # the client may already be gone
            self._send(
                status,
                {"Content-Type": "application/json"},
                json.dumps(envelope(error, text, "-")).encode(),
                close=True,
            )


SWITCH_INTERVAL_SECONDS = 0.0002
"""How long a thread of the local API may hold the interpreter lock while another waits.

In AWS each function runs in its own environment; here they are threads of one process, and
Python lets a busy thread (the authorizer's or a feedback's botocore call, a controller look)
keep the lock for 5 ms before a waiting rank request may run. Every rank that arrived during
such work showed up to 5 ms of someone else's CPU time, so about 7 % of ranks sat in a 2-15 ms
tail around a 1 ms median and the p95 the rollout judges was that queue. With 0.2 ms the tail
is the handler's own (docs/decisions/100)."""


class LocalApi:
    def __init__(self, host: str, port: int, verbose: bool = False) -> None:
        self.server = ThreadingHTTPServer((host, port), _Handler)
        self.server.daemon_threads = True
        self.server.verbose = verbose  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self.server.serve_forever, daemon=True, name="policyhub-api"
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalApi:
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        # What was loaded and seeded before serving stays out of every later collection, and
        # young collections come less often: collector pauses were another share of the tail.
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
