"""Synthesize the CDK app in-process once per session (about 15 s) for all infra tests.

The dependency layer points at a small placeholder directory (context
`policyhub:depsLayerDir`), so CI needs neither the Lambda wheels nor Docker.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@dataclass(frozen=True)
class Synthesized:
    stack: Any
    template: dict[str, Any]
    template_path: Path

    def resources(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {
            k: v for k, v in self.template["Resources"].items() if v["Type"] == cfn_type
        }


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    from infra.app import build_app, cdk_json_context

    deps = tmp_path_factory.mktemp("deps-layer")
    (deps / "python").mkdir()
    (deps / "python" / "placeholder.txt").write_text("stands in for the Lambda wheels\n")
    outdir = tmp_path_factory.mktemp("cdk.out")
    context = {**cdk_json_context(), "policyhub:depsLayerDir": str(deps)}
    app, stack = build_app(context, outdir=str(outdir))
    assembly = app.synth()  # fails here when cdk-nag reports an unacknowledged finding
    artifact = assembly.get_stack_by_name(stack.stack_name)
    template_path = Path(assembly.directory) / artifact.template_file
    template = json.loads(template_path.read_text())
    return Synthesized(stack=stack, template=template, template_path=template_path)
