"""The demo's stack: the embedded AWS and the API each in a child process, the users in this one.

The demo pushes thousands of requests through the stack on a 2-core machine while the
rollout controller judges every step, and the rollout's latency rule compares the p95 of two
variants' rank latencies. With the simulated users' threads in the API's process, they, the
handlers and the controller would all queue for one interpreter lock, and the latency the rank
handler logs would be mostly that queue (a p95 of 5-20 ms around a 1 ms median). So moto's
server runs in one child process (as in `make up`), the API (the same `LocalApi`, handlers and
rollout controller thread that `make up` runs) in another, and this process keeps only the
users, the story and the training job started by the schedule handler (docs/decisions/091).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from infra.local.children import spawn, stop_child, until_terminated, wait_until_answers
from infra.local.embedded_aws import EmbeddedAwsProcess
from infra.local.functions import load_handler
from infra.local.gateway import AUTHORIZER
from infra.local.http_server import LocalApi
from infra.local.resources import create_all
from infra.local.seed import SeededTenant, seed_demo
from policyhub.adapters import aws
from policyhub.api import container
from policyhub.api.routes import ROUTES

HOST = "127.0.0.1"


@dataclass
class DemoStack:
    aws: EmbeddedAwsProcess
    api_process: subprocess.Popen[bytes]
    api_url: str
    demo: SeededTenant

    @property
    def aws_endpoint(self) -> str:
        return self.aws.endpoint

    def stop(self) -> None:
        stop_child(self.api_process)
        self.aws.stop()
        container.reset()


def start_demo_stack(api_port: int, aws_port: int, local_dir: Path | None) -> DemoStack:
    embedded = EmbeddedAwsProcess(HOST, aws_port).start()
    api_process: subprocess.Popen[bytes] | None = None
    try:
        create_all()
        demo = seed_demo(local_dir)
        # The child inherits the embedded AWS's environment, set by `start` above.
        api_process = spawn("infra.local.demo_stack", str(api_port))
        api_url = f"http://{HOST}:{api_port}/v1"
        wait_until_answers(f"{api_url}/health", api_process, "local API", timeout=120)
    except BaseException:
        if api_process is not None:
            stop_child(api_process)
        embedded.stop()
        raise
    return DemoStack(embedded, api_process, api_url, demo)


def serve_api(port: int) -> None:
    """The child: the local API, its handlers and the rollout controller, on the embedded AWS
    its parent started (the environment says where)."""
    aws.reset_clients()
    container.reset()
    for name in (AUTHORIZER, *(r.name for r in ROUTES)):
        load_handler(name)
    api = LocalApi(HOST, port).start()
    try:
        until_terminated()
    finally:
        api.stop()
        container.reset()


if __name__ == "__main__":
    serve_api(int(sys.argv[1]))
