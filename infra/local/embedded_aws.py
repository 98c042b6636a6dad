"""moto's server as the embedded AWS, and the environment that points boto3 at it.

`EmbeddedAws` runs the server on threads of this process; `EmbeddedAwsProcess` runs it in a
child process. The local stacks use the child: moto does real CPU work for every AWS call,
which on threads of the API's process competes for the API's interpreter lock, where in AWS
those calls are network waits. (Measured alone, the move did not change the rank p95 during a
rollout, 4.2-4.5 ms either way; the switch interval did, decision 100.)
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import sys

from moto.server import ThreadedMotoServer

from infra.local.children import spawn, stop_child, until_terminated, wait_until_answers
from infra.local.moto_fidelity import make_dynamodb_writes_atomic
from policyhub.adapters import aws
from policyhub.api import container
from policyhub.settings import CURSOR_SECRET, MODE, Mode

REGION = "us-east-1"


def aws_environment(endpoint: str) -> dict[str, str]:
    """What the local stack's processes (and tests) run with: boto3 pointed at the embedded AWS,
    and the service in local mode, with its stand-ins (`policyhub.settings`)."""
    return {
        MODE.name: Mode.LOCAL.value,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        CURSOR_SECRET.name: secrets.token_hex(32),
        "POWERTOOLS_METRICS_NAMESPACE": "PolicyHub",
        "POWERTOOLS_SERVICE_NAME": "policyhub",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
    }


def free_port() -> int:
    """A port nothing listens on now (the OS's choice), for a local server to bind."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedAws:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmbeddedAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        make_dynamodb_writes_atomic()
        self._server.start()
        os.environ.update(aws_environment(self.endpoint))
        aws.reset_clients()
        container.reset()
        return self

    def stop(self) -> None:
        self._server.stop()


class EmbeddedAwsProcess:
    """moto's server in a child process; `start` points this process's boto3 at it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> EmbeddedAwsProcess:
        self._process = spawn("infra.local.embedded_aws", self.host, str(self.port))
        try:
            wait_until_answers(f"{self.endpoint}/moto-api/", self._process, "embedded AWS",
                               timeout)
        except BaseException:
            self.stop()
            raise
        os.environ.update(aws_environment(self.endpoint))
        aws.reset_clients()
        container.reset()
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_child(self._process)


if __name__ == "__main__":
    EmbeddedAws(sys.argv[1], int(sys.argv[2])).start()
    until_terminated()
