"""Where the running local stack is (written by `make up` into `.local/`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from policyhub.adapters import aws
from policyhub.settings import MODE, Mode


class LocalStackNotFoundError(FileNotFoundError):
    """`--local` without a running local stack's files; the CLI prints it as one line."""


def local_dir() -> Path:
    return Path(os.environ.get("POLICYHUB_LOCAL_DIR", ".local"))


def _local_file(name: str) -> Path:
    path = local_dir() / name
    if not path.exists():
        raise LocalStackNotFoundError(
            f"{path} not found: --local needs the local stack; start it with `make up` in "
            "this directory (or point POLICYHUB_LOCAL_DIR at its directory)"
        )
    return path


def stack_info() -> dict[str, Any]:
    info: dict[str, Any] = json.loads(_local_file("stack.json").read_text())
    return info


def use_local_aws() -> None:
    """Point boto3 and our settings at the local stack's embedded AWS."""
    info = stack_info()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": info["aws_endpoint"],
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": info["region"],
            MODE.name: Mode.LOCAL.value,
            **info["resources"],
        }
    )
    aws.reset_clients()


def local_api() -> tuple[str, str]:
    info = stack_info()
    return info["api_url"], _local_file("admin-key").read_text().strip()
