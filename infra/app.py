"""CDK entry point: `npx aws-cdk@2 synth` runs `python -m infra.app` (see cdk.json).

`build_app()` is also what tests/infra synthesizes in-process, with the same cdk.json context.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.stack import PolicyHubStack
from infra.stack.config import PREFIX, REPO_ROOT

DEFAULT_STACK_NAME = "PolicyHub"


def cdk_json_context(path: Path = REPO_ROOT / "cdk.json") -> dict[str, Any]:
    context: dict[str, Any] = json.loads(path.read_text()).get("context", {})
    return context


def build_app(
    context: dict[str, Any] | None = None, outdir: str | None = None
) -> tuple[App, PolicyHubStack]:
    """The app with the stack and the cdk-nag AwsSolutions checks attached (decision 055).

    `context` given here is merged over cdk.json's (the CLI does the merging itself when it
    runs this module, so `main()` passes none).
    """
    app = App(context=context, outdir=outdir)
    name = app.node.try_get_context(PREFIX + "stackName") or DEFAULT_STACK_NAME
    stack = PolicyHubStack(
        app,
        str(name),
        description="policyhub: versioned RL ranking policies moved into production safely",
        env=Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
