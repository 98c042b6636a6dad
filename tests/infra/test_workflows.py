"""The rollout workflow in the synthesized template: the loop, its ASL, who may start it, and the
alarm rule that rolls back at once."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.stack.catalog import ROLLOUT_ALARM, ROLLOUT_CONTROLLER, ROUTE_ACCESS
from infra.stack.functions import ROLLOUT_ALARM_PREFIX
from infra.stack.rollouts import MAX_LOOKS_PER_EXECUTION, ROLLOUT_STATE_MACHINE_ENV
from policyhub.api.routes import ROUTES

from .conftest import (
    Synthesized,
    actions_of,
    function_described,
    render,
    role_of,
    statements_of_role,
)

pytestmark = pytest.mark.xdist_group("infra")

LAMBDA_SERVICE_ERRORS = {"Lambda.ServiceException", "Lambda.AWSLambdaException",
                         "Lambda.SdkClientException"}  # fmt: skip


def _machine(s: Synthesized) -> tuple[str, dict[str, Any]]:
    ((logical_id, machine),) = s.resources("AWS::StepFunctions::StateMachine").items()
    return logical_id, machine


def _definition(s: Synthesized) -> dict[str, Any]:
    text = render(_machine(s)[1]["Properties"]["DefinitionString"])
    definition: dict[str, Any] = json.loads(text)
    return definition


def test_rollout_workflow_is_standard_logs_everything_and_traces(
    synthesized: Synthesized,
) -> None:
    _, machine = _machine(synthesized)
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is True
    (destination,) = logging["Destinations"]
    group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    group_props = synthesized.resources("AWS::Logs::LogGroup")[group]["Properties"]
    assert group_props["RetentionInDays"] == 30
    assert render(group_props["LogGroupName"]).startswith("/aws/vendedlogs/states/")


def test_rollout_workflow_loops_invoke_choice_wait_count(synthesized: Synthesized) -> None:
    definition = _definition(synthesized)
    states = definition["States"]
    assert states["Count the look"]["Parameters"]["looks.$"] == "States.MathAdd($.looks, 1)"
    kinds = sorted(state["Type"] for state in states.values())
    assert kinds == [
        "Choice", "Choice", "Pass", "Pass", "Succeed", "Succeed", "Task", "Task", "Wait"
    ]  # fmt: skip
    task = states["Judge step"]
    controller_id, _ = function_described(synthesized, ROLLOUT_CONTROLLER.description)
    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["Parameters"]["FunctionName"].endswith(f":function:{controller_id}")
    retried = {e for retry in task["Retry"] for e in retry["ErrorEquals"]}
    assert retried >= LAMBDA_SERVICE_ERRORS
    assert "States.TaskFailed" in retried


def test_an_execution_continues_the_rollout_in_a_new_one_before_its_history_fills(
    synthesized: Synthesized,
) -> None:
    """After MAX_LOOKS_PER_EXECUTION looks the machine starts itself again for the same
    rollout, `<rollout id>-<generation>`, with the ids and fresh counters, and ends."""
    _, machine = _machine(synthesized)
    states = _definition(synthesized)["States"]
    over = states["Rollout over?"]
    (limit,) = [c for c in over["Choices"] if "NumericGreaterThanEquals" in c]
    assert (limit["Variable"], limit["NumericGreaterThanEquals"]) == (
        "$.looks",
        MAX_LOOKS_PER_EXECUTION - 1,
    )
    again = states[limit["Next"]]
    assert again["Resource"] == "arn:aws:states:::states:startExecution"
    name = render(machine["Properties"]["StateMachineName"])
    assert render(again["Parameters"]["StateMachineArn"]) == (
        f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
    )
    assert again["Parameters"]["Name.$"] == (
        "States.Format('{}-{}', $.rollout_id, States.MathAdd($.generation, 1))"
    )
    assert again["Parameters"]["Input"] == {
        "tenant_id.$": "$.tenant_id",
        "agent_type.$": "$.agent_type",
        "rollout_id.$": "$.rollout_id",
        "generation.$": "States.MathAdd($.generation, 1)",
        "looks": 0,
        "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id",
    }
    assert states[again["Next"]]["Type"] == "Succeed"
    caught = {e for c in again["Catch"] for e in c["ErrorEquals"]}
    assert caught == {"StepFunctions.ExecutionAlreadyExistsException"}
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = statements_of_role(synthesized, role)
    starts = [s for s in statements if "states:StartExecution" in actions_of([s])]
    assert [render(s["Resource"]) for s in starts] == [
        f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
    ]


def test_rollout_asl_passes_asl_validator(synthesized: Synthesized, tmp_path: Path) -> None:
    """One asl-validator run over the rollout ASL and a definition it must refuse (a Wait
    without a time), so the check is known to be able to fail."""
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js) is not installed: asl-validator cannot run here")
    rollout = tmp_path / "rollout.asl.json"
    rollout.write_text(json.dumps(_definition(synthesized)))
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "End": True}}}))
    done = subprocess.run(
        [npx, "--yes", "asl-validator", "--json-path", str(rollout), "--json-path", str(broken)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = done.stdout + done.stderr
    assert f'"{rollout}" is valid' in output, output
    assert f'"{broken}" is invalid' in output, output


def test_only_the_promote_route_starts_executions_of_this_state_machine(
    synthesized: Synthesized,
) -> None:
    machine_id, _ = _machine(synthesized)
    starters = []
    for logical_id, fn in synthesized.resources("AWS::Lambda::Function").items():
        statements = statements_of_role(synthesized, role_of(fn))
        starts = [s for s in statements if "states:StartExecution" in actions_of([s])]
        if starts:
            starters.append(logical_id)
            assert [s["Resource"] for s in starts] == [{"Ref": machine_id}]
            env = fn["Properties"]["Environment"]["Variables"]
            assert env[ROLLOUT_STATE_MACHINE_ENV] == {"Ref": machine_id}
    expected = [r for r in ROUTES if ROUTE_ACCESS[r.name].start_rollouts]
    assert [r.name for r in expected] == ["promote_policy"]
    assert len(starters) == 1


def test_alarm_permissions_are_limited_to_rollout_alarms(synthesized: Synthesized) -> None:
    holders = 0
    for fn in synthesized.resources("AWS::Lambda::Function").values():
        for statement in statements_of_role(synthesized, role_of(fn)):
            if actions_of([statement]) & {"cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"}:
                holders += 1
                assert render(statement["Resource"]) == (
                    f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{ROLLOUT_ALARM_PREFIX}*"
                )
    # promote, rollback, abort, the controller and the alarm rollback
    assert holders == 5


def test_the_controller_and_alarm_rollback_can_do_what_a_rollout_step_does(
    synthesized: Synthesized,
) -> None:
    for spec in (ROLLOUT_CONTROLLER, ROLLOUT_ALARM):
        _, fn = function_described(synthesized, spec.description)
        actions = actions_of(statements_of_role(synthesized, role_of(fn)))
        assert {"dynamodb:UpdateItem", "cloudwatch:DeleteAlarms"} <= actions, spec.name
        # health from CloudWatch metrics, not from the logs (decision 119)
        assert ("cloudwatch:GetMetricData" in actions) == (spec is ROLLOUT_CONTROLLER)
        assert "s3:GetObject" not in actions
        assert "states:StartExecution" not in actions


def test_an_alarm_of_a_rollout_in_alarm_triggers_the_rollback_function(
    synthesized: Synthesized,
) -> None:
    alarm_fn_id, _ = function_described(synthesized, ROLLOUT_ALARM.description)
    rules = [
        (logical_id, rule)
        for logical_id, rule in synthesized.resources("AWS::Events::Rule").items()
        if rule["Properties"]["EventPattern"]["source"] == ["aws.cloudwatch"]
    ]
    ((rule_id, rule),) = rules
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {
            "alarmName": [{"prefix": ROLLOUT_ALARM_PREFIX}],
            "state": {"value": ["ALARM"]},
        },
    }
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [alarm_fn_id, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    permissions = [
        p["Properties"]
        for p in synthesized.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [alarm_fn_id, "Arn"]}
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [alarm_fn_id, "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]},
        }
    ]


def test_the_state_machine_may_invoke_only_the_controller(synthesized: Synthesized) -> None:
    _, machine = _machine(synthesized)
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    controller_id, _ = function_described(synthesized, ROLLOUT_CONTROLLER.description)
    invokes = [
        s for s in statements_of_role(synthesized, role)
        if "lambda:InvokeFunction" in actions_of([s])
    ]  # fmt: skip
    resources = [r for s in invokes for r in s["Resource"]]
    assert {render(r).split(":function:")[1].split(":")[0] for r in resources} == {controller_id}
