"""How each Lambda function is packaged, derived from its `Access` in the catalog.

Functions that read the interaction logs (`Access.interactions`) analyse them: compare, status,
experiments, training and the rollout controller need scipy, scikit-learn and DuckDB on top of
what serving needs, more than Lambda's 250 MB unzipped limit for a function and its layers
allows. They run from one container image (`ANALYSIS_DOCKERFILE`, one `CMD` per function).
Every other function (rank, feedback, the authorizer, the routes that only touch the table)
keeps the zip package with the shared code layer and the lean dependency layer
(`SERVING_PACKAGES`), for cold start. See decision 117.

`infra/scripts/build_layers.sh` asks `python -m infra.scripts.layer_plan serving` what to put
in the layer and `check-sizes <dir>` whether every zip function still fits.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_

from .catalog import FunctionSpec, Level, all_function_specs
from .config import REPO_ROOT


class Packaging(StrEnum):
    LAYERS = "layers"
    """Zip of `functions/<name>/`, the shared code layer and the serving dependency layer."""
    IMAGE = "image"
    """The analysis container image, `CMD functions.<name>.handler.handler`."""


def packaging_of(spec: FunctionSpec) -> Packaging:
    return Packaging.IMAGE if spec.access.interactions is not Level.NONE else Packaging.LAYERS


SERVING_PACKAGES: tuple[str, ...] = (
    "aws-lambda-powertools",
    "pydantic",
    "typing-extensions",
    "numpy",
    "onnxruntime",
    "orjson",
    "msgspec",
)
"""The dependency layer: what the serving functions import (tests/infra/test_packaging.py
scans their import graphs), nothing more."""

RUNTIME_PACKAGES: tuple[str, ...] = ("boto3",)
"""In the python3.12 Lambda runtime and its base image already: never packaged."""

IMAGE_EXTRA_PACKAGES: tuple[str, ...] = ("scikit-learn",)
"""Beyond the project's dependencies: compare's reward model (`ml/reward_model.py`)."""

ANALYSIS_DOCKERFILE = "infra/images/analysis/Dockerfile"
IMAGE_PYTHON_DIR = "layers/shared/python/policyhub"
"""What the image copies besides each image function's `functions/<name>/`."""

ANALYSIS_TMP_MIB = 10_240
"""Ephemeral storage of each image function, Lambda's most: the log readers download a window's
objects to local disk before DuckDB reads them (decision 113); the default 512 MB holds about
500k decisions of 20 candidates (88 MB of Parquet per 100k)."""

LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
"""A zip function and all its layers, unzipped."""

PYPROJECT = REPO_ROOT / "pyproject.toml"


def normalize(name: str) -> str:
    """PEP 503: `Scikit_Learn` and `scikit-learn` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return normalize(match.group(1))


def declared_requirements(pyproject: Path = PYPROJECT) -> dict[str, str]:
    """Every requirement pyproject.toml declares (dependencies and extras), by project name."""
    project = tomllib.loads(pyproject.read_text())["project"]
    found: dict[str, str] = {}
    for requirement in (
        *project["dependencies"],
        *(r for extra in project.get("optional-dependencies", {}).values() for r in extra),
    ):
        name = requirement_name(requirement)
        if name != "policyhub":
            found.setdefault(name, requirement.split(";")[0].strip())
    return found


def pinned(names: Iterable[str], pyproject: Path = PYPROJECT) -> list[str]:
    """`names` with their version bounds from pyproject.toml (the one place they live)."""
    declared = declared_requirements(pyproject)
    missing = [n for n in names if normalize(n) not in declared]
    if missing:
        raise KeyError(f"{missing} not declared in {pyproject.name}: add them with their bounds")
    return [declared[normalize(n)] for n in names]


def serving_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    return pinned(SERVING_PACKAGES, pyproject)


def image_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The project's runtime dependencies (what the code may import) and the image extras,
    without what the Lambda runtime provides."""
    project = tomllib.loads(pyproject.read_text())["project"]
    runtime = {normalize(n) for n in RUNTIME_PACKAGES}
    names = [
        n
        for n in (*map(requirement_name, project["dependencies"]), *IMAGE_EXTRA_PACKAGES)
        if normalize(n) not in runtime
    ]
    return pinned(names, pyproject)


def functions_packaged_as(packaging: Packaging) -> list[FunctionSpec]:
    return [spec for spec in all_function_specs() if packaging_of(spec) is packaging]


def image_handler(spec: FunctionSpec) -> str:
    """The image's `CMD` for `spec`: its handler module as the image lays it out."""
    return f"functions.{spec.name}.handler.handler"


def image_context() -> list[str]:
    """What the analysis Dockerfile copies, relative to the repository root."""
    return [
        ANALYSIS_DOCKERFILE,
        IMAGE_PYTHON_DIR,
        *(f"functions/{spec.name}" for spec in functions_packaged_as(Packaging.IMAGE)),
    ]


def analysis_image_code(spec: FunctionSpec) -> lambda_.DockerImageCode:
    """The analysis image, running `spec`'s handler. Synth only stages the context (no
    Docker); `cdk deploy` builds and pushes it once for every image function (one asset)."""
    return lambda_.DockerImageCode.from_image_asset(
        str(REPO_ROOT),
        file=ANALYSIS_DOCKERFILE,
        cmd=[image_handler(spec)],
        platform=ecr_assets.Platform.LINUX_ARM64,
        build_args={"REQUIREMENTS": " ".join(image_requirements())},
        exclude=[
            "*",
            *(f"!{path}" for path in image_context()),
            "**/__pycache__",
            "**/*.pyc",
            "**/*.egg-info",
        ],
        ignore_mode=IgnoreMode.DOCKER,
    )


def dir_bytes(path: Path) -> int:
    """Bytes of the files under `path`, as Lambda counts an unzipped package."""
    return sum(
        f.stat().st_size
        for f in path.rglob("*")
        if f.is_file() and "__pycache__" not in f.parts and not f.name.endswith(".pyc")
    )


def layer_function_bytes(deps_bytes: int, shared_dir: Path, functions_dir: Path) -> dict[str, int]:
    """Unzipped bytes of each zip function with its two layers (deps layer of `deps_bytes`)."""
    shared = dir_bytes(shared_dir)
    return {
        spec.name: deps_bytes + shared + dir_bytes(functions_dir / spec.name)
        for spec in functions_packaged_as(Packaging.LAYERS)
    }


def check_sizes(deps_dir: Path) -> int:
    """Print the unzipped size of the deps layer and the largest zip function; 1 over limit."""
    if not deps_dir.is_dir() or not any(deps_dir.iterdir()):
        print(f"error: no dependency layer at {deps_dir}", file=sys.stderr)
        return 1
    sizes = layer_function_bytes(
        dir_bytes(deps_dir), REPO_ROOT / "layers" / "shared", REPO_ROOT / "functions"
    )
    name, largest = max(sizes.items(), key=lambda kv: kv[1])
    mb = 1024 * 1024
    print(
        f"unzipped: deps layer {dir_bytes(deps_dir) / mb:.1f} MB; largest zip function with "
        f"its layers ({name}) {largest / mb:.1f} MB "
        f"(limit {LAMBDA_UNZIPPED_LIMIT_BYTES / mb:.0f} MB)"
    )
    over = [n for n, size in sizes.items() if size >= LAMBDA_UNZIPPED_LIMIT_BYTES]
    if over:
        print(f"error: over Lambda's unzipped limit: {over}", file=sys.stderr)
        return 1
    return 0
