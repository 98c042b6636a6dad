"""Training in the synthesized template: the 6-hour schedule, the Fargate task and its network,
who may run it, and the rule that reports failed tasks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.stack.catalog import TRAINING_SCHEDULE, TRAINING_TASK
from infra.stack.training import CONTAINER_NAME, IMAGE_CONTEXT, JOB_RUNNER_ENV
from policyhub.api.routes import route
from policyhub.resources import ARTIFACT_BUCKET, INTERACTION_BUCKET, REGISTRY_TABLE
from policyhub.settings import LAMBDA_MARKER, Mode, Settings

from .conftest import (
    Synthesized,
    actions_of,
    function_described,
    render,
    role_of,
    statements_of_role,
)

pytestmark = pytest.mark.xdist_group("infra")


def _one(s: Synthesized, cfn_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = s.resources(cfn_type).items()
    return logical_id, resource


def _runner_functions(s: Synthesized) -> list[dict[str, Any]]:
    r = route("train_policy")
    return [
        function_described(s, f"{r.method} {r.path}:")[1],
        function_described(s, TRAINING_SCHEDULE.description)[1],
    ]


def _objects_of(s: Synthesized, logical_prefix: str) -> str:
    """The rendered `<bucket ARN>/*` of the one bucket whose logical id starts so."""
    (bucket,) = [b for b in s.resources("AWS::S3::Bucket") if b.startswith(logical_prefix)]
    return render({"Fn::GetAtt": [bucket, "Arn"]}) + "/*"


def test_schedule_invokes_the_training_schedule_function_every_6_hours(
    synthesized: Synthesized,
) -> None:
    _, schedule = _one(synthesized, "AWS::Scheduler::Schedule")
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "rate(6 hours)"
    assert props["State"] == "ENABLED"
    fn_id, _ = function_described(synthesized, TRAINING_SCHEDULE.description)
    assert props["Target"]["Arn"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    role = props["Target"]["RoleArn"]["Fn::GetAtt"][0]
    statements = statements_of_role(synthesized, role)
    assert actions_of(statements) == {"lambda:InvokeFunction"}
    for st in statements:
        for resource in st["Resource"]:
            assert render(resource).split(":function:")[1].split(":")[0] == fn_id


def test_training_task_is_fargate_arm64_with_logs(synthesized: Synthesized) -> None:
    _, task = _one(synthesized, "AWS::ECS::TaskDefinition")
    props = task["Properties"]
    assert props["RequiresCompatibilities"] == ["FARGATE"]
    assert props["NetworkMode"] == "awsvpc"
    assert props["RuntimePlatform"] == {
        "CpuArchitecture": "ARM64",
        "OperatingSystemFamily": "LINUX",
    }
    (container,) = props["ContainerDefinitions"]
    assert container["Name"] == CONTAINER_NAME
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    group = container["LogConfiguration"]["Options"]["awslogs-group"]["Ref"]
    assert synthesized.resources("AWS::Logs::LogGroup")[group]["Properties"]["RetentionInDays"]
    env = {e["Name"] for e in container["Environment"]}
    for name in (REGISTRY_TABLE.env_var, ARTIFACT_BUCKET.env_var, INTERACTION_BUCKET.env_var):
        assert name in env
    # ECS is not detected: the task says aws itself, so it never picks a local stand-in.
    values = {e["Name"]: render(e["Value"]) for e in container["Environment"]}
    assert Settings.from_env(values).mode is Mode.AWS


def test_cluster_has_container_insights(synthesized: Synthesized) -> None:
    _, cluster = _one(synthesized, "AWS::ECS::Cluster")
    settings = cluster["Properties"]["ClusterSettings"]
    assert {"Name": "containerInsights", "Value": "enabled"} in settings


def test_training_task_role_reads_logs_and_registers_but_nothing_else(
    synthesized: Synthesized,
) -> None:
    _, task = _one(synthesized, "AWS::ECS::TaskDefinition")
    role = task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    statements = statements_of_role(synthesized, role)
    actions = actions_of(statements)
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "s3:PutObject", "s3:GetObject"} <= actions
    assert not {a for a in actions if a.split(":")[0] in {"ecs", "states", "iam", "firehose"}}
    artifacts = _objects_of(synthesized, "DataArtifactBucket")
    interactions = _objects_of(synthesized, "DataInteractionBucket")
    for st in statements:
        if "s3:PutObject" in actions_of([st]):
            assert render(st["Resource"]) == artifacts
        if "s3:GetObject" in actions_of([st]):
            assert render(st["Resource"]) in {artifacts, interactions}


def test_train_route_and_schedule_run_only_this_task_and_pass_only_its_roles(
    synthesized: Synthesized,
) -> None:
    task_id, task = _one(synthesized, "AWS::ECS::TaskDefinition")
    cluster_id, _ = _one(synthesized, "AWS::ECS::Cluster")
    passable = {
        task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0],
        task["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0],
    }
    for fn in _runner_functions(synthesized):
        statements = statements_of_role(synthesized, role_of(fn))
        (run,) = [s for s in statements if "ecs:RunTask" in actions_of([s])]
        assert run["Resource"] == {"Ref": task_id}
        assert run["Condition"] == {
            "ArnEquals": {"ecs:cluster": {"Fn::GetAtt": [cluster_id, "Arn"]}}
        }
        (pass_role,) = [s for s in statements if "iam:PassRole" in actions_of([s])]
        assert {r["Fn::GetAtt"][0] for r in pass_role["Resource"]} == passable
        assert pass_role["Condition"] == {
            "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
        }
        (tag,) = [s for s in statements if "ecs:TagResource" in actions_of([s])]
        assert tag["Condition"] == {"StringEquals": {"ecs:CreateAction": "RunTask"}}


def test_runner_settings_are_what_the_ecs_job_runner_reads(synthesized: Synthesized) -> None:
    task_id, _ = _one(synthesized, "AWS::ECS::TaskDefinition")
    (sg_id,) = [
        k for k, v in synthesized.resources("AWS::EC2::SecurityGroup").items()
        if v["Properties"]["GroupDescription"].startswith("policyhub training tasks:")
    ]  # fmt: skip
    subnets = set(synthesized.resources("AWS::EC2::Subnet"))
    for fn in _runner_functions(synthesized):
        env = {k: render(v) for k, v in fn["Properties"]["Environment"]["Variables"].items()}
        settings = Settings.from_env({**env, LAMBDA_MARKER: "fn"})
        assert settings.job_runner == "ecs"
        config = settings.ecs_task
        assert config is not None
        assert config.task_definition == task_id
        assert config.container == CONTAINER_NAME
        assert set(config.subnets) == subnets
        assert config.security_group == f"{sg_id}.GroupId"
    r = route("list_training_jobs")
    _, reader = function_described(synthesized, f"{r.method} {r.path}:")
    assert JOB_RUNNER_ENV not in reader["Properties"]["Environment"]["Variables"]


def test_training_network_has_no_internet_path_but_the_endpoints_it_needs(
    synthesized: Synthesized,
) -> None:
    assert not synthesized.resources("AWS::EC2::NatGateway")
    assert not synthesized.resources("AWS::EC2::InternetGateway")
    for subnet in synthesized.resources("AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    services = set()
    for endpoint in synthesized.resources("AWS::EC2::VPCEndpoint").values():
        services.add(render(endpoint["Properties"]["ServiceName"]).rsplit(".", 1)[-1])
    assert {"s3", "dynamodb", "api", "dkr", "logs"} <= services
    assert synthesized.resources("AWS::EC2::FlowLog")


def test_endpoints_accept_https_only_from_training_tasks(synthesized: Synthesized) -> None:
    groups = synthesized.resources("AWS::EC2::SecurityGroup")
    (task_sg,) = [
        k for k, v in groups.items()
        if v["Properties"]["GroupDescription"].startswith("policyhub training tasks:")
    ]  # fmt: skip
    (ingress,) = synthesized.resources("AWS::EC2::SecurityGroupIngress").values()
    props = ingress["Properties"]
    assert props["SourceSecurityGroupId"] == {"Fn::GetAtt": [task_sg, "GroupId"]}
    assert (props["FromPort"], props["ToPort"], props["IpProtocol"]) == (443, 443, "tcp")
    for group in groups.values():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            assert rule.get("CidrIp") != "0.0.0.0/0"


def test_a_failed_training_task_is_reported_to_the_alarm_topic(synthesized: Synthesized) -> None:
    cluster_id, _ = _one(synthesized, "AWS::ECS::Cluster")
    (topic_id,) = synthesized.resources("AWS::SNS::Topic")
    (rule,) = [
        r for r in synthesized.resources("AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"]["source"] == ["aws.ecs"]
    ]  # fmt: skip
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["ECS Task State Change"]
    assert pattern["detail"]["clusterArn"] == [{"Fn::GetAtt": [cluster_id, "Arn"]}]
    assert pattern["detail"]["lastStatus"] == ["STOPPED"]
    assert {"containers": {"exitCode": [{"anything-but": 0}]}} in pattern["detail"]["$or"]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": topic_id}
    (policy,) = synthesized.resources("AWS::SNS::TopicPolicy").values()
    publishers = [
        st for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if st["Effect"] == "Allow" and st.get("Principal") == {"Service": "events.amazonaws.com"}
    ]  # fmt: skip
    assert publishers
    (key,) = synthesized.resources("AWS::KMS::Key").values()
    key_users = [
        st for st in key["Properties"]["KeyPolicy"]["Statement"]
        if "kms:GenerateDataKey" in actions_of([st])
    ]  # fmt: skip
    services = {svc for st in key_users for svc in st["Principal"]["Service"]}
    assert "events.amazonaws.com" in services  # the topic is encrypted with this key


def test_training_image_is_built_from_its_dockerfile_with_a_small_context(
    synthesized: Synthesized,
) -> None:
    """Synth stages the image context (no Docker); only what the Dockerfile copies goes in."""
    manifest = json.loads(
        (synthesized.template_path.parent / f"{synthesized.stack.stack_name}.assets.json")
        .read_text()
    )
    # The other image asset is the analysis Lambda image (test_packaging.py).
    (image,) = [
        i
        for i in manifest["dockerImages"].values()
        if i["source"]["dockerFile"] == f"functions/{TRAINING_TASK}/Dockerfile"
    ]
    source = image["source"]
    assert source["platform"] == "linux/arm64"
    staged = synthesized.template_path.parent / source["directory"]
    top = {p.name for p in staged.iterdir()}
    assert top == {path.split("/")[0] for path in IMAGE_CONTEXT}
    assert (staged / "layers/shared/python/policyhub/api/container.py").is_file()
    assert not list(staged.rglob("__pycache__"))
