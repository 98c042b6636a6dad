"""Each Lambda function's package holds what its code imports, and each zip function fits.

The packaging comes from the catalog (`infra/stack/packaging.py`: functions that read the
interaction logs run from the analysis image, the rest from the lean layer). What a function
imports comes from a static scan of its code (`tests/infra/imports.py`); what a package holds
from the requirement closure of its packages, read from this environment's installed metadata.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from infra.stack.catalog import AUTHORIZER, FunctionSpec, all_function_specs
from infra.stack.config import REPO_ROOT
from infra.stack.packaging import (
    ANALYSIS_DOCKERFILE,
    ANALYSIS_TMP_MIB,
    LAMBDA_UNZIPPED_LIMIT_BYTES,
    RUNTIME_PACKAGES,
    SERVING_PACKAGES,
    Packaging,
    functions_packaged_as,
    image_handler,
    image_requirements,
    layer_function_bytes,
    normalize,
    packaging_of,
    pinned,
    requirement_name,
    serving_requirements,
)
from policyhub.resources import BUCKETS, TABLES

from .conftest import Synthesized, function_described
from .imports import DYNAMIC_IMPORT_SITES, import_graph

pytestmark = pytest.mark.xdist_group("infra")

# The Lambda python3.12 runtime on arm64, for requirement markers.
LAMBDA_ENVIRONMENT = {
    "python_version": "3.12", "python_full_version": "3.12.0", "implementation_name": "cpython",
    "platform_python_implementation": "CPython", "platform_machine": "aarch64",
    "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "extra": "",
}  # fmt: skip
ANALYSIS_ONLY = {"scipy", "scikit-learn", "duckdb"}
SPECS = all_function_specs()


def closure(names: list[str]) -> set[str]:
    """`names` and everything they require on Lambda, as installed projects (normalized)."""
    seen: set[str] = set()
    pending = [normalize(n) for n in names]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in md.distribution(name).requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(LAMBDA_ENVIRONMENT):
                pending.append(normalize(req.name))
    return seen


@cache
def provided(packaging: Packaging) -> frozenset[str]:
    packages = (
        list(SERVING_PACKAGES)
        if packaging is Packaging.LAYERS
        else [requirement_name(r) for r in image_requirements()]
    )
    return frozenset(closure(packages) | closure(list(RUNTIME_PACKAGES)))


@cache
def projects_of(top_level: str) -> frozenset[str]:
    return frozenset(normalize(p) for p in md.packages_distributions().get(top_level, []))


def test_functions_that_read_the_interaction_logs_run_from_the_analysis_image() -> None:
    image = {spec.name for spec in functions_packaged_as(Packaging.IMAGE)}
    assert image == {
        "get_status", "start_experiment", "get_experiment", "stop_experiment", "train_policy",
        "compare_policies", "training_schedule",
    }  # fmt: skip
    for name in ("rank", "feedback", AUTHORIZER.name, "get_policy", "rollout_alarm"):
        (spec,) = [s for s in SPECS if s.name == name]
        assert packaging_of(spec) is Packaging.LAYERS, name


def test_the_serving_layer_leaves_the_analysis_packages_out() -> None:
    assert not provided(Packaging.LAYERS) & ANALYSIS_ONLY
    assert {"scipy", "scikit-learn"} <= provided(Packaging.IMAGE)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_every_function_gets_the_packages_its_code_imports(spec: FunctionSpec) -> None:
    packaging = packaging_of(spec)
    missing = {
        top: sorted(projects_of(top)) or "not installed"
        for top in sorted(import_graph(spec.name).third_party)
        if not projects_of(top) & provided(packaging)
    }
    assert not missing, f"{spec.name} ({packaging}) imports what its package lacks: {missing}"


def test_the_scan_sees_the_analysis_imports_and_the_lean_paths() -> None:
    """The scan can fail: it finds scikit-learn behind compare and scipy behind experiments,
    and nothing of either behind rank or the OpenAPI document."""
    assert "sklearn" in import_graph("compare_policies").third_party
    assert "scipy" in import_graph("get_experiment").third_party
    assert "onnxruntime" in import_graph("rank").third_party
    for name in ("rank", "feedback", "openapi", "list_training_jobs"):
        assert not import_graph(name).third_party & {"sklearn", "scipy", "onnx", "skl2onnx"}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_only_the_route_table_is_imported_by_name(spec: FunctionSpec) -> None:
    """The scan resolves the route table's `module:function` strings; any other import by
    name would be invisible to it."""
    assert import_graph(spec.name).imports_by_name <= DYNAMIC_IMPORT_SITES


def _installed_bytes(projects: set[str]) -> int:
    total = 0
    for project in projects:
        dist = md.distribution(project)
        for f in dist.files or []:
            path = Path(str(dist.locate_file(f)))
            if "__pycache__" not in f.parts and path.is_file():
                total += path.stat().st_size
    return total


def test_every_zip_function_with_its_layers_fits_lambdas_unzipped_limit() -> None:
    """Sized from this environment's wheels of the same projects, unstripped: more than the
    aarch64 layer `make layers` builds (measured 140 vs 108 MB, decision 117)."""
    deps = _installed_bytes(closure(list(SERVING_PACKAGES)) - closure(list(RUNTIME_PACKAGES)))
    sizes = layer_function_bytes(deps, REPO_ROOT / "layers" / "shared", REPO_ROOT / "functions")
    assert set(sizes) == {s.name for s in functions_packaged_as(Packaging.LAYERS)}
    over = {n: size // 2**20 for n, size in sizes.items() if size >= LAMBDA_UNZIPPED_LIMIT_BYTES}
    assert not over


def test_layer_and_image_requirements_carry_pyprojects_bounds() -> None:
    assert all(re.search(r"[<>=]", r) for r in serving_requirements())
    assert all(re.search(r"[<>=]", r) for r in image_requirements())
    names = {requirement_name(r) for r in image_requirements()}
    assert "boto3" not in names  # in the runtime
    with pytest.raises(KeyError, match="not declared"):
        pinned(["no-such-project"])


def _image_functions(s: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        spec.name: function_described(s, spec.description[:256])[1]["Properties"]
        for spec in functions_packaged_as(Packaging.IMAGE)
    }


def test_image_functions_run_their_handler_from_one_arm64_image(synthesized: Synthesized) -> None:
    functions = _image_functions(synthesized)
    uris = set()
    for name, props in functions.items():
        assert props["PackageType"] == "Image"
        assert props["Architectures"] == ["arm64"]
        assert props["ImageConfig"]["Command"] == [
            image_handler(next(s for s in SPECS if s.name == name))
        ]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["EphemeralStorage"] == {"Size": ANALYSIS_TMP_MIB}  # the readers' downloads
        assert "Layers" not in props and "Runtime" not in props
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == "policyhub"
        assert {t.env_var for t in TABLES} | {b.env_var for b in BUCKETS} <= set(env)
        uris.add(props["Code"]["ImageUri"]["Fn::Sub"])
    assert len(uris) == 1  # one image asset, built and pushed once


def test_the_image_context_holds_only_what_the_dockerfile_copies(
    synthesized: Synthesized,
) -> None:
    """Staged at synth without Docker: the Dockerfile, the shared package and the image
    functions' handlers; no virtualenv, no build output, no other function."""
    (tag,) = {
        props["Code"]["ImageUri"]["Fn::Sub"].rpartition(":")[2]
        for props in _image_functions(synthesized).values()
    }
    context = synthesized.template_path.parent / f"asset.{tag}"
    assert (context / ANALYSIS_DOCKERFILE).is_file()
    assert (context / "layers/shared/python/policyhub/api/container.py").is_file()
    staged = {p.name for p in (context / "functions").iterdir()}
    assert staged == {s.name for s in functions_packaged_as(Packaging.IMAGE)}
    assert {p.name for p in context.iterdir()} == {"functions", "infra", "layers"}
