"""Synthesize the CDK app in-process once per session for all infra tests.

The dependency layer points at a small placeholder directory (context
`policyhub:depsLayerDir`), so CI needs neither the Lambda wheels nor Docker. cfn-lint, the
slowest check, starts on the template in a second process right after the synth and runs while
the other tests do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
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
    cfn_lint: subprocess.Popen[str]

    def cfn_lint_findings(self) -> list[tuple[str, str]]:
        """(rule id, message) of every cfn-lint match on the template."""
        out, err = self.cfn_lint.communicate(timeout=600)
        assert self.cfn_lint.returncode == 0, err
        return [(rule, message) for rule, message in json.loads(out)]

    def resources(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {
            k: v for k, v in self.template["Resources"].items() if v["Type"] == cfn_type
        }


PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
          "AWS::URLSuffix": "amazonaws.com"}  # fmt: skip


def render(value: Any) -> str:
    """A template string value as text: pseudo parameters get example values, a `Ref` becomes
    the logical id it names, `Fn::GetAtt [X, Arn]` an example Lambda ARN named X."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return str(sep).join(render(p) for p in parts)
    if "Ref" in value:
        return PSEUDO.get(value["Ref"], str(value["Ref"]))
    if "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        if attribute == "Arn":
            return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        return f"{name}.{attribute}"
    raise AssertionError(f"cannot render {value!r}")


def statements_of_role(s: Synthesized, role_logical_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in s.resources("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for st in statements:
        acts = st["Action"]
        out |= {acts} if isinstance(acts, str) else set(acts)
    return out



def function_described(s: Synthesized, prefix: str) -> tuple[str, dict[str, Any]]:
    """The Lambda function whose description starts with `prefix` (catalog descriptions)."""
    (found,) = [
        (logical_id, fn)
        for logical_id, fn in s.resources("AWS::Lambda::Function").items()
        if fn["Properties"].get("Description", "").startswith(prefix)
    ]
    return found


def role_of(fn: dict[str, Any]) -> str:
    return str(fn["Properties"]["Role"]["Fn::GetAtt"][0])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the cfn-lint check last among the infra tests: it waits for the background lint,
    which meanwhile overlaps the other tests."""
    infra = [i for i, item in enumerate(items) if "tests/infra/" in item.nodeid]
    lint = [i for i in infra if items[i].name == "test_cfn_lint_passes_on_the_template"]
    if not lint or not infra:
        return
    item = items.pop(lint[0])
    items.insert(infra[-1], item)


CFN_LINT = """
import json, sys
from pathlib import Path
from cfnlint.api import ManualArgs, lint_file
matches = lint_file(Path(sys.argv[1]), config=ManualArgs(regions=["us-east-1"]))
print(json.dumps([[m.rule.id, str(m)] for m in matches]))
"""


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
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
    lint = subprocess.Popen(
        [sys.executable, "-c", CFN_LINT, str(template_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield Synthesized(
            stack=stack, template=template, template_path=template_path, cfn_lint=lint
        )
    finally:
        if lint.poll() is None:
            lint.kill()
            lint.communicate()
