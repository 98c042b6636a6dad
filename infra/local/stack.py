"""`make up`: the embedded AWS (a child process), our resources, the demo tenant and the local
API."""

from __future__ import annotations

import json
import os
import shlex
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from infra.local.embedded_aws import EmbeddedAwsProcess
from infra.local.functions import load_handler
from infra.local.gateway import AUTHORIZER
from infra.local.http_server import LocalApi
from infra.local.resources import create_all
from infra.local.seed import SeededTenant, seed_demo
from policyhub.api.routes import ROUTES
from policyhub.resources import BUCKETS, TABLES

LOCAL_DIR = Path(os.environ.get("POLICYHUB_LOCAL_DIR", ".local"))
HOST = "127.0.0.1"


@dataclass
class RunningStack:
    aws: EmbeddedAwsProcess
    api: LocalApi
    demo: SeededTenant

    def stop(self) -> None:
        self.api.stop()
        self.aws.stop()


def start(api_port: int, aws_port: int, local_dir: Path | None = LOCAL_DIR) -> RunningStack:
    embedded = EmbeddedAwsProcess(HOST, aws_port).start()
    try:
        create_all()
        demo = seed_demo(local_dir, trained=True)
        # Import every handler before the port opens: "ready" (health 200) then means every
        # route answers at once, instead of the first call to each paying its import.
        for name in (AUTHORIZER, *(r.name for r in ROUTES)):
            load_handler(name)
        api = LocalApi(HOST, api_port).start()
    except BaseException:
        embedded.stop()
        raise
    if local_dir is not None:
        (local_dir / "stack.json").write_text(
            json.dumps(
                {
                    "api_url": f"{api.url}/v1",
                    "aws_endpoint": embedded.endpoint,
                    "region": os.environ["AWS_DEFAULT_REGION"],
                    "resources": {
                        **{t.env_var: t.default_name for t in TABLES},
                        **{b.env_var: b.default_name for b in BUCKETS},
                    },
                },
                indent=2,
            )
        )
    return RunningStack(embedded, api, demo)


def instructions(api_url: str, aws_endpoint: str, local_dir: Path) -> list[str]:
    """What `make up` prints once ready: where things are, and exactly how to run the product
    page's examples (they read the key from HEBBRIX_API_KEY; examples/page/run.py points their
    BASE at POLICYHUB_API_URL) and the CLI (`--local` reads the key from the local dir)."""
    key = local_dir / "admin-key"
    return [
        f"policyhub local stack ready: API {api_url} · embedded AWS {aws_endpoint}",
        f"tenant demo · admin key in {key} · agent memory_manager: v1.2.4 in production, "
        "v1.2.5 and v1.2.6 candidates",
        "the product page's examples (examples/page/) read the key from HEBBRIX_API_KEY; "
        "in another terminal, in this directory:",
        f'  export HEBBRIX_API_KEY="$(cat {shlex.quote(str(key))})"',
        f"  export POLICYHUB_API_URL={api_url}",
        "  .venv/bin/python examples/page/run.py      "
        "# status, promote v1.2.5, emergency rollback to v1.2.4, in order",
        "  .venv/bin/policyhub --local status         # the CLI (--local reads the key itself)",
        "state is fresh at each start (a new key too) · Ctrl-C to stop",
    ]


def up() -> None:
    api_port = int(os.environ.get("POLICYHUB_PORT", "3000"))
    aws_port = int(os.environ.get("POLICYHUB_AWS_PORT", "5000"))
    stack = start(api_port, aws_port)
    for line in instructions(f"{stack.api.url}/v1", stack.aws.endpoint, LOCAL_DIR):
        print(line, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
