"""moto's server as the embedded AWS, and the environment that points boto3 at it."""

from __future__ import annotations

import logging
import os
import secrets

from moto.server import ThreadedMotoServer

from infra.local.moto_fidelity import make_dynamodb_writes_atomic
from policyhub.adapters import aws
from policyhub.api import container

REGION = "us-east-1"


def aws_environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POLICYHUB_CURSOR_SECRET": secrets.token_hex(32),
        "POWERTOOLS_METRICS_NAMESPACE": "PolicyHub",
        "POWERTOOLS_SERVICE_NAME": "policyhub",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
    }


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
