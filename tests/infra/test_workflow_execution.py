"""The synthesized rollout state machine, executed by moto's Step Functions interpreter, drives
rollouts to production and to rollback through the real controller handler.

What runs: the ASL of the synthesized template; the promote route's StartExecution; moto's
interpreter looping invoke -> choice -> wait; its `lambda:invoke` routed in-process to
`functions/rollout_controller` (moto runs no Lambda code, decision 081); the controller on
DynamoDB and S3 of the same moto. Nothing is canned: every look judges the traffic sent.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.awslambda_simple.models import LambdaSimpleBackend

from infra.local.events import LambdaContext
from infra.local.functions import load_handler
from infra.local.moto_fidelity import make_sfn_start_execution_take_asl_names
from infra.local.seed import seed_demo
from infra.stack.catalog import ROLLOUT_CONTROLLER
from infra.stack.rollouts import ROLLOUT_STATE_MACHINE_ENV
from policyhub.api import container
from tests.conftest import embedded_aws_context
from tests.integration.test_serving import rank_body
from tests.support.api import Api
from tests.support.traffic import COMPRESSED_PIPELINE, balanced_users, drive_until, send

from .conftest import Synthesized, function_described, render

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("infra")]

ENDED = {"promoted", "rolled_back", "aborted"}
FAST = {**COMPRESSED_PIPELINE, "canary_steps": [5, 50, 100], "max_step_seconds": 120}
"""Compressed time; every look waits the 1 s minimum the controller asks of the Wait state."""
LOOKS = 3
"""Looks per execution in these tests (the synthesized machine makes 500)."""


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


class ControllerInvocations:
    """moto's Lambda without Docker, with the controller's invokes run by the real handler."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.events: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def invoke(
        self,
        backend: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: dict[str, str],
    ) -> bytes:
        assert function_name.rsplit(":", 1)[-1] == self.function_name, function_name
        event = json.loads(body)
        self.events.append(event)
        try:
            result = load_handler("rollout_controller")(event, LambdaContext("rollout_controller"))
        except Exception as exc:  # Lambda answers 200 with the error as the payload
            self.errors.append(repr(exc))
            response_headers["x-amz-function-error"] = "Unhandled"
            result = {"errorMessage": str(exc), "errorType": type(exc).__name__}
        return json.dumps(result).encode()


@pytest.fixture
def workflow(
    synthesized: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Api, ControllerInvocations]]:
    controller_id, _ = function_described(synthesized, ROLLOUT_CONTROLLER.description)
    ((_, machine),) = synthesized.resources("AWS::StepFunctions::StateMachine").items()
    definition = json.loads(render(machine["Properties"]["DefinitionString"]))
    # Continue in a new execution after LOOKS looks instead of 500, so a test sees it happen.
    choices = definition["States"]["Rollout over?"]["Choices"]
    (limit,) = [c for c in choices if "NumericGreaterThanEquals" in c]
    limit["NumericGreaterThanEquals"] = LOOKS - 1
    config: Any = {
        "stepfunctions": {"execute_state_machine": True},
        "lambda": {"use_docker": False},
    }
    make_sfn_start_execution_take_asl_names()
    with embedded_aws_context(monkeypatch, config):
        role = boto3.client("iam").create_role(
            RoleName="policyhub-rollouts",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        boto3.client("lambda").create_function(
            FunctionName=controller_id,
            Runtime="python3.11",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": _zip()},
        )
        arn = boto3.client("stepfunctions").create_state_machine(
            name=render(machine["Properties"]["StateMachineName"]),
            definition=json.dumps(definition),
            roleArn=role,
        )["stateMachineArn"]
        invocations = ControllerInvocations(controller_id)
        monkeypatch.setattr(
            LambdaSimpleBackend,
            "invoke",
            lambda backend, *args: invocations.invoke(backend, *args),
        )
        monkeypatch.setenv(ROLLOUT_STATE_MACHINE_ENV, arn)
        monkeypatch.setenv("POLICYHUB_POINTER_TTL_SECONDS", "0")
        container.reset()
        yield Api(seed_demo(None).admin_key), invocations
        _stop_executions(arn)


def _stop_executions(machine_arn: str) -> None:
    sfn = boto3.client("stepfunctions")
    for e in sfn.list_executions(stateMachineArn=machine_arn, statusFilter="RUNNING")["executions"]:
        sfn.stop_execution(executionArn=e["executionArn"])


def _finished_executions(rollout_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    """The rollout's executions, first to last, once none of them runs any more: the first is
    named by the rollout id, each continuation `<rollout id>-<generation>`."""
    sfn = boto3.client("stepfunctions")
    (machine,) = sfn.list_state_machines()["stateMachines"]
    deadline = time.monotonic() + timeout
    while True:
        listed = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
        mine = [e for e in listed if e["name"].split("-")[0] == rollout_id]
        if mine and all(e["status"] != "RUNNING" for e in mine):
            break
        assert time.monotonic() < deadline, "the executions did not end with their rollout"
        time.sleep(0.2)
    generation = {rollout_id: 0} | {f"{rollout_id}-{n}": n for n in range(1, len(mine))}
    assert {e["name"] for e in mine} == set(generation), [e["name"] for e in mine]
    described = [sfn.describe_execution(executionArn=e["executionArn"]) for e in mine]
    return sorted((dict(d) for d in described), key=lambda d: generation[d["name"]])


def _history_types(execution_arn: str) -> list[str]:
    sfn = boto3.client("stepfunctions")
    history = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)
    return [e["type"] for e in history["events"]]


def test_the_state_machine_drives_a_good_candidate_to_production(
    workflow: tuple[Api, ControllerInvocations],
) -> None:
    api, invocations = workflow
    started = api.post("/policies/promote", {"version": "v1.2.5", "pipeline": FAST})
    assert started.status == 202, started.body
    rid = started.json()["rollout_id"]
    final = drive_until(api, rid, ENDED, lambda users: send(api, rank_body, users, 30))
    assert final["state"] == "promoted", final["outcome_reason"]
    assert [(s["stage"], s["traffic_percent"]) for s in final["steps"]] == [
        ("shadow", 0),
        ("canary", 5),
        ("canary", 50),
        ("canary", 100),
        ("post_promotion", 100),
    ]
    users = balanced_users(rid)
    while api.get(f"/policies/rollouts/{rid}").json()["ended_at"] is None:  # the watch
        send(api, rank_body, users, 30)
    executions = _finished_executions(rid)
    assert [e["status"] for e in executions] == ["SUCCEEDED"] * len(executions)
    assert len(executions) >= 2, "the rollout took more looks than one execution makes"
    assert json.loads(executions[0]["input"]) == {
        "tenant_id": "demo",
        "agent_type": "memory_manager",
        "rollout_id": rid,
    }
    for n, e in enumerate(executions[1:], start=1):
        assert json.loads(e["input"]) == {
            "tenant_id": "demo",
            "agent_type": "memory_manager",
            "rollout_id": rid,
            "generation": n,
            "looks": 0,
            "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": executions[n - 1]["executionArn"],
        }
    assert api.get("/policies/status").json()["production"]["version"] == "v1.2.5"
    assert invocations.errors == []
    assert {json.dumps(e, sort_keys=True) for e in invocations.events} == {
        json.dumps({"tenant_id": "demo", "agent_type": "memory_manager", "rollout_id": rid},
                   sort_keys=True)
    }  # fmt: skip
    looks = []
    for e in executions:
        kinds = _history_types(e["executionArn"])
        continued = e is not executions[-1]  # its last task started the next execution
        looks.append(kinds.count("TaskSucceeded") - int(continued))
        assert kinds[-1] == "ExecutionSucceeded"
    assert looks[:-1] == [LOOKS] * (len(executions) - 1)
    assert sum(looks) == len(invocations.events) >= 5, "one look per step at least"


def test_the_state_machine_rolls_back_a_candidate_users_dislike_and_ends(
    workflow: tuple[Api, ControllerInvocations],
) -> None:
    api, invocations = workflow
    started = api.post(
        "/policies/promote", {"version": "v1.2.5", "strategy": "canary", "pipeline": FAST}
    )
    assert started.status == 202, started.body
    rid = started.json()["rollout_id"]

    def disliked(users: Iterator[str]) -> None:
        send(api, rank_body, users, 30, success=lambda d: d["variant"] != "canary")

    final = drive_until(api, rid, ENDED, disliked)
    assert final["state"] == "rolled_back", final
    assert final["steps"][-1]["traffic_percent"] == 5
    assert "success" in final["outcome_reason"]
    assert [e["status"] for e in _finished_executions(rid)][-1] == "SUCCEEDED"
    assert api.get("/policies/status").json()["production"]["version"] == "v1.2.4"
    assert api.get("/policies/v1.2.5").json()["status"] == "rolled_back"
    assert invocations.errors == []
