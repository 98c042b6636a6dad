"""One settings source: Lambda refuses local stand-ins, local mode chooses them (decision 102)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from policyhub import signing
from policyhub.adapters.interaction_logs import FirehoseSink
from policyhub.adapters.local_jobs import ThreadJobRunner
from policyhub.adapters.local_log_sink import BatchingS3Sink
from policyhub.adapters.workflows import LocalRolloutRunner, StepFunctionsStarter
from policyhub.api import container
from policyhub.settings import (
    LAMBDA_MARKER,
    NEEDS,
    VARIABLES,
    ConfigurationError,
    Mode,
    Need,
    Settings,
    required_in_aws,
    task_job,
)

ROOT = Path(__file__).resolve().parents[2]
POLICYHUB = ROOT / "layers" / "shared" / "python" / "policyhub"
BASE = {
    "POLICYHUB_TABLE": "registry",
    "POLICYHUB_ARTIFACT_BUCKET": "artifacts",
    "POLICYHUB_INTERACTION_BUCKET": "interactions",
}
IN_LAMBDA = {LAMBDA_MARKER: "policyhub-rank", **BASE}
ECS = {
    "POLICYHUB_JOB_RUNNER": "ecs",
    "POLICYHUB_TRAINING_CLUSTER": "training",
    "POLICYHUB_TRAINING_TASK_DEFINITION": "arn:aws:ecs:us-east-1:123456789012:task-definition/t:1",
    "POLICYHUB_TRAINING_SUBNETS": "subnet-a, subnet-b",
}
EVERYTHING = {
    **IN_LAMBDA,
    **ECS,
    "POLICYHUB_CURSOR_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s",
    "POLICYHUB_LOG_STREAM": "interactions",
    "POLICYHUB_ROLLOUT_STATE_MACHINE": "arn:aws:states:us-east-1:123456789012:stateMachine:r",
}


def _error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env(env)
    return str(err.value)


# ---- loading -----------------------------------------------------------------------------------
def test_lambda_is_detected_by_its_function_name_or_its_execution_environment() -> None:
    assert Settings.from_env(IN_LAMBDA).mode is Mode.AWS
    env = {**BASE, "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"}
    assert Settings.from_env(env).mode is Mode.AWS
    assert Settings.from_env({}).mode is Mode.LOCAL
    assert Settings.from_env({**BASE, "POLICYHUB_MODE": "aws"}).mode is Mode.AWS


def test_in_lambda_table_and_bucket_names_have_no_defaults() -> None:
    message = _error({LAMBDA_MARKER: "fn"})
    for name in BASE:
        assert name in message


def test_locally_names_default_to_the_local_stacks() -> None:
    s = Settings.from_env({})
    assert (s.table_name, s.artifact_bucket, s.interaction_bucket) == (
        "policyhub-registry", "policyhub-artifacts", "policyhub-interactions",
    )  # fmt: skip
    assert s.job_runner == "local"
    assert s.local_log_sink


def test_local_mode_is_refused_inside_lambda() -> None:
    message = _error({**IN_LAMBDA, "POLICYHUB_MODE": "local"})
    assert "POLICYHUB_MODE=local inside AWS Lambda" in message


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("POLICYHUB_POINTER_TTL_SECONDS", "two", "is not a number"),
        ("POLICYHUB_POINTER_TTL_SECONDS", "-1", "at least 0"),
        ("POLICYHUB_POINTER_TTL_SECONDS", "nan", "finite"),
        ("POLICYHUB_LOCAL_TICK_SECONDS", "0", "greater than 0"),
        ("POLICYHUB_MAX_ARTIFACT_BYTES", "4MiB", "not an integer"),
        ("POLICYHUB_MAX_ARTIFACT_BYTES", "0", "at least 1"),
        ("POLICYHUB_MIN_NEW_INTERACTIONS", "1e3", "not an integer"),
        ("POLICYHUB_TRAINING_WINDOW_HOURS", "0", "at least 1"),
        ("POLICYHUB_JOB_RUNNER", "thread", "must be one of ecs, local"),
        ("POLICYHUB_MODE", "prod", "must be one of aws, local"),
        ("POLICYHUB_HEALTH_SOURCE", "prometheus", "must be one of cloudwatch, logs"),
    ],
)
def test_an_invalid_value_fails_the_load_naming_its_variable(
    name: str, value: str, says: str
) -> None:
    message = _error({name: value})
    assert f"{name}={value!r}" in message and says in message


def test_every_problem_is_reported_at_once() -> None:
    message = _error({LAMBDA_MARKER: "fn", "POLICYHUB_POINTER_TTL_SECONDS": "soon"})
    assert "POLICYHUB_TABLE" in message and "POLICYHUB_POINTER_TTL_SECONDS" in message


def test_in_lambda_the_job_runner_is_ecs_with_its_settings_or_nothing() -> None:
    assert "POLICYHUB_JOB_RUNNER=local in aws" in _error(
        {**IN_LAMBDA, "POLICYHUB_JOB_RUNNER": "local"}
    )
    message = _error({**IN_LAMBDA, "POLICYHUB_JOB_RUNNER": "ecs"})
    assert "POLICYHUB_TRAINING_CLUSTER" in message and "POLICYHUB_TRAINING_SUBNETS" in message
    assert Settings.from_env(IN_LAMBDA).job_runner is None
    s = Settings.from_env({**IN_LAMBDA, **ECS})
    assert s.ecs_task is not None and s.ecs_task.subnets == ("subnet-a", "subnet-b")
    assert s.ecs_task.container == "training"


def test_a_literal_signing_secret_is_for_the_local_stack_only() -> None:
    message = _error({**IN_LAMBDA, "POLICYHUB_CURSOR_SECRET": "hunter2"})
    assert "POLICYHUB_CURSOR_SECRET_ARN" in message
    assert Settings.from_env({"POLICYHUB_CURSOR_SECRET": "hunter2"}).cursor_secret == "hunter2"


@pytest.mark.parametrize("need", list(Need), ids=str)
def test_in_lambda_a_missing_capability_is_refused_naming_its_variables(need: Need) -> None:
    s = Settings.from_env(IN_LAMBDA)
    with pytest.raises(ConfigurationError) as err:
        s.require(need)
    for var in NEEDS[need]:
        assert var.name in str(err.value)
    assert "never falls back to a local stand-in" in str(err.value)
    Settings.from_env(EVERYTHING).require(*Need)  # configured: no error
    Settings.from_env({}).require(*Need)  # local: the stand-ins serve


def test_required_in_aws_lists_the_names_and_the_runner_value() -> None:
    assert required_in_aws([]) == dict.fromkeys(BASE)
    assert required_in_aws([Need.RUN_TRAINING])["POLICYHUB_JOB_RUNNER"] == "ecs"
    assert "POLICYHUB_CURSOR_SECRET_ARN" in required_in_aws([Need.SIGNING])


def test_the_training_task_job_names_what_it_misses() -> None:
    with pytest.raises(ConfigurationError, match="POLICYHUB_TENANT_ID, POLICYHUB_AGENT_TYPE"):
        task_job({"POLICYHUB_JOB_ID": "j1"})
    job = task_job({"POLICYHUB_JOB_ID": "j1", "POLICYHUB_TENANT_ID": "t",
                    "POLICYHUB_AGENT_TYPE": "a"})  # fmt: skip
    assert (job.job_id, job.tenant_id, job.agent_type) == ("j1", "t", "a")


# ---- one source ------------------------------------------------------------------------------
def test_only_the_settings_module_reads_the_environment() -> None:
    """The CLI's client settings (POLICYHUB_API_URL/KEY, POLICYHUB_LOCAL_DIR) are the exception:
    they configure the client, not the service."""
    readers = []
    for path in [*POLICYHUB.rglob("*.py"), *(ROOT / "functions").rglob("*.py")]:
        if path in (POLICYHUB / "settings.py",) or (POLICYHUB / "cli") in path.parents:
            continue
        if re.search(r"os\.environ|getenv\(", path.read_text()):
            readers.append(str(path.relative_to(ROOT)))
    assert readers == []


def test_every_policyhub_variable_the_service_names_is_a_setting() -> None:
    names = {v.name for v in VARIABLES}
    assert len(names) == len(VARIABLES)
    sources = [*POLICYHUB.rglob("*.py"), *(ROOT / "functions").rglob("*.py"),
               *(ROOT / "infra" / "stack").rglob("*.py")]  # fmt: skip
    client = {"POLICYHUB_API_URL", "POLICYHUB_API_KEY", "POLICYHUB_LOCAL_DIR", "POLICYHUB_PORT",
              "POLICYHUB_AWS_PORT", "POLICYHUB_REPORT_DIR"}  # fmt: skip
    name = re.compile(r"POLICYHUB_[A-Z_]*[A-Z](?![A-Z_*])")  # not `POLICYHUB_TRAINING_*`
    mentioned = {m for path in sources for m in name.findall(path.read_text())}
    assert mentioned - names - client == set()


# ---- the container: stand-ins locally, refusals in Lambda --------------------------------------
@pytest.fixture
def fresh_container() -> Iterator[None]:
    container.reset()
    yield
    container.reset()


def _set(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for var in VARIABLES:
        monkeypatch.delenv(var.name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    container.reset()


def test_locally_the_stand_ins_are_chosen(
    monkeypatch: pytest.MonkeyPatch, fresh_container: None
) -> None:
    _set(monkeypatch, {"POLICYHUB_MODE": "local"})
    assert isinstance(container.log_sink(), BatchingS3Sink)
    assert isinstance(container.workflows(), LocalRolloutRunner)
    assert isinstance(container.job_runner(), ThreadJobRunner)
    assert signing.verify("p", b"x", signing.sign("p", b"x"))  # a random per-process key


def test_in_lambda_no_stand_in_is_ever_chosen(
    monkeypatch: pytest.MonkeyPatch, fresh_container: None
) -> None:
    _set(monkeypatch, {**IN_LAMBDA, "AWS_DEFAULT_REGION": "us-east-1"})
    with pytest.raises(ConfigurationError, match="POLICYHUB_LOG_STREAM not set"):
        container.log_sink()
    with pytest.raises(ConfigurationError, match="POLICYHUB_CURSOR_SECRET_ARN not set"):
        signing.sign("cursor", b"page")
    # Functions that build a service but never start (rollback, the controller, job reads)
    # still work; starting refuses, naming what it would need.
    with pytest.raises(ConfigurationError, match="POLICYHUB_ROLLOUT_STATE_MACHINE not set"):
        container.workflows().start("acme", "agent", "r1")
    with pytest.raises(ConfigurationError, match="POLICYHUB_JOB_RUNNER=ecs, POLICYHUB_TRAINING"):
        container.job_runner().start("acme", "agent", "j1")
    assert not isinstance(container.workflows(), LocalRolloutRunner)
    assert not isinstance(container.job_runner(), ThreadJobRunner)


def test_in_lambda_the_configured_adapters_are_chosen(
    monkeypatch: pytest.MonkeyPatch, fresh_container: None
) -> None:
    from policyhub.adapters.ecs_jobs import EcsJobRunner

    _set(monkeypatch, {**EVERYTHING, "AWS_DEFAULT_REGION": "us-east-1"})
    assert isinstance(container.log_sink(), FirehoseSink)
    assert isinstance(container.workflows(), StepFunctionsStarter)
    assert isinstance(container.job_runner(), EcsJobRunner)


@pytest.mark.parametrize(
    ("env", "source"),
    [
        ({}, "cloudwatch"),  # the local stack reads health as AWS does (decision 121)
        ({"POLICYHUB_HEALTH_SOURCE": "logs"}, "logs"),
        (IN_LAMBDA, "cloudwatch"),  # in AWS the controller reads no raw logs
        ({**IN_LAMBDA, "POLICYHUB_HEALTH_SOURCE": "logs"}, "logs"),
    ],
)
def test_the_health_source_is_cloudwatch_unless_its_variable_says_logs(
    env: dict[str, str], source: str
) -> None:
    assert Settings.from_env(env).health_source == source


def test_the_health_source_chooses_the_reader_and_the_local_metrics(
    monkeypatch: pytest.MonkeyPatch, fresh_container: None
) -> None:
    from policyhub.adapters.cloudwatch_health import CloudWatchHealthReader
    from policyhub.adapters.cloudwatch_metric_sink import PutMetricDataSink
    from policyhub.adapters.emf_metrics import EmfServingMetrics
    from policyhub.services.health_reader import LogHealthReader

    _set(monkeypatch, {"POLICYHUB_MODE": "local", "POLICYHUB_HEALTH_SOURCE": "logs"})
    assert isinstance(container.health_reader(), LogHealthReader)
    assert isinstance(container.serving_metrics(), EmfServingMetrics)
    _set(monkeypatch, {"POLICYHUB_MODE": "local"})
    reader = container.health_reader()
    assert isinstance(reader, CloudWatchHealthReader) and reader.resolution_seconds == 1
    assert isinstance(container.serving_metrics(), PutMetricDataSink)
    _set(monkeypatch, {**EVERYTHING, "AWS_DEFAULT_REGION": "us-east-1"})
    reader = container.health_reader()
    assert isinstance(reader, CloudWatchHealthReader) and reader.resolution_seconds == 60
    assert isinstance(container.serving_metrics(), EmfServingMetrics)


def test_a_function_without_its_settings_fails_at_cold_start_naming_them(
    monkeypatch: pytest.MonkeyPatch, fresh_container: None
) -> None:
    from policyhub.api.app import lambda_handler

    _set(monkeypatch, IN_LAMBDA)
    with pytest.raises(ConfigurationError) as err:
        lambda_handler("rank")
    assert "POLICYHUB_CURSOR_SECRET_ARN" in str(err.value)
    assert "POLICYHUB_LOG_STREAM" in str(err.value)
    with pytest.raises(ConfigurationError, match="POLICYHUB_ROLLOUT_STATE_MACHINE"):
        lambda_handler("promote_policy")
    lambda_handler("get_policy")  # needs only the table and buckets
    _set(monkeypatch, {LAMBDA_MARKER: "fn"})
    with pytest.raises(ConfigurationError, match="POLICYHUB_TABLE"):
        lambda_handler("health")


# ---- signing: one key for every instance -------------------------------------------------------
@pytest.fixture
def secret_arn(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x",
                        "AWS_SECRET_ACCESS_KEY": "x"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(Name="policyhub-signing", SecretString="s" * 64)["ARN"]
        parameters.clear_caches()  # type: ignore[no-untyped-call]
        yield arn
    parameters.clear_caches()  # type: ignore[no-untyped-call]


def test_the_configured_secret_verifies_across_instances(secret_arn: str) -> None:
    env = {**IN_LAMBDA, "POLICYHUB_CURSOR_SECRET_ARN": secret_arn}
    one = signing.Signer(signing.master_secret(Settings.from_env(env)))
    parameters.clear_caches()  # type: ignore[no-untyped-call]  # another container reads the secret itself
    other = signing.Signer(signing.master_secret(Settings.from_env(env)))
    cursor = one.sign("cursor", b"tenant acme, page 2")
    assert other.verify("cursor", b"tenant acme, page 2", cursor)
    assert not other.verify("decision", b"tenant acme, page 2", cursor)


def test_random_local_keys_do_not_verify_across_processes_which_lambda_refuses() -> None:
    one = signing.Signer(signing.master_secret(Settings.from_env({})))
    other = signing.Signer(signing.master_secret(Settings.from_env({})))
    assert not other.verify("cursor", b"page", one.sign("cursor", b"page"))
    with pytest.raises(ConfigurationError, match="POLICYHUB_CURSOR_SECRET_ARN"):
        signing.master_secret(Settings.from_env(IN_LAMBDA))
