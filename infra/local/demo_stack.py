"""The demo's stack: the embedded AWS in a child process, the API and the controller in this one.

`make up` runs everything in one process. The demo pushes thousands of requests through it
on a 2-core machine while the rollout controller re-reads the interaction logs every tick, and
in one process all of that queues for one interpreter lock. With moto's server in a child
process the emulated AWS gets the second core; the API, the handlers, the controller and the
training worker are the same code `make up` runs (docs/decisions/091).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from infra.local.embedded_aws import EmbeddedAws, aws_environment
from infra.local.http_server import LocalApi
from infra.local.resources import create_all
from infra.local.seed import SeededTenant, seed_demo
from policyhub.adapters import aws
from policyhub.api import container

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class DemoStack:
    aws_process: subprocess.Popen[bytes]
    aws_endpoint: str
    api: LocalApi
    demo: SeededTenant

    def stop(self) -> None:
        self.api.stop()
        container.reset()
        self.aws_process.terminate()
        try:
            self.aws_process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.aws_process.kill()
            self.aws_process.wait()


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the embedded AWS exited with {process.returncode}")
        try:
            if requests.get(f"{endpoint}/moto-api/", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the embedded AWS did not answer on {endpoint} in {timeout} s")
        time.sleep(0.1)


def start_demo_stack(api_port: int, aws_port: int, local_dir: Path | None) -> DemoStack:
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "infra.local.demo_stack", str(aws_port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": python_path},
    )
    endpoint = f"http://{HOST}:{aws_port}"
    try:
        _wait_until_up(endpoint, process, timeout=60)
        os.environ.update(aws_environment(endpoint))
        aws.reset_clients()
        container.reset()
        create_all()
        demo = seed_demo(local_dir)
        api = LocalApi(HOST, api_port).start()
    except BaseException:
        process.terminate()
        process.wait()
        raise
    return DemoStack(process, endpoint, api, demo)


def serve_embedded_aws(port: int) -> None:
    """The child: moto's server (with our DynamoDB write isolation) until terminated."""
    EmbeddedAws(HOST, port).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()


if __name__ == "__main__":
    serve_embedded_aws(int(sys.argv[1]))
