"""A real local stack (`python -m infra.local up`) in a subprocess, shared by the e2e tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from infra.local.embedded_aws import free_port
from tests.support.interactions import object_records

ROOT = Path(__file__).resolve().parents[2]




@dataclass(frozen=True)
class LocalStack:
    base: str
    admin_key: str
    local_dir: Path
    env: dict[str, str]

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin_key}"}

    def s3(self) -> tuple[Any, dict[str, str]]:
        """A client of the stack's embedded S3, and its resource names (`stack.json`)."""
        info = json.loads((self.local_dir / "stack.json").read_text())
        client = boto3.client(
            "s3",
            endpoint_url=info["aws_endpoint"],
            region_name=info["region"],
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        return client, info["resources"]


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One stack for the e2e tests that keep to their own agents or can share history."""
    with running_stack(tmp_path_factory.mktemp("local")) as stack:
        yield stack


@contextmanager
def running_stack(local_dir: Path) -> Iterator[LocalStack]:
    """`make up` (`python -m infra.local up`) on free ports with its files and its printed
    output (`stack.log`) in `local_dir`, until the block ends: a fresh stack, for a test that
    needs the seeded state as a new user finds it."""
    local_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "POLICYHUB_PORT": str(free_port()),
        "POLICYHUB_AWS_PORT": str(free_port()),
        "POLICYHUB_LOCAL_DIR": str(local_dir),
    }
    log = (local_dir / "stack.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.local", "up"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{env['POLICYHUB_PORT']}/v1"
    deadline = time.monotonic() + 240
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError((local_dir / "stack.log").read_text())
            try:
                if requests.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or busy starting
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("local stack did not become healthy in 240 s")
            time.sleep(0.2)
        yield LocalStack(base, (local_dir / "admin-key").read_text(), local_dir, env)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def logged_records(stack: LocalStack, agent: str) -> list[dict[str, Any]]:
    """Every decision and feedback record the stack's log sink wrote for `agent` of tenant demo."""
    s3, resources = stack.s3()
    bucket = resources["POLICYHUB_INTERACTION_BUCKET"]
    records: list[dict[str, Any]] = []
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"interactions/tenant=demo/agent={agent}/"
    )
    for page in pages:
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            records += object_records(body)
    return records
