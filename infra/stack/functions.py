"""The Lambda functions: shared code layer + dependency layer, one least-privilege role each.

Every function gets the same runtime (python3.12 on arm64, see decision 051), Powertools
settings, the resource environment variables of `policyhub.resources`, X-Ray tracing and its
own log group with retention. What it may touch comes from its `Access` in `catalog.py`; how it
is packaged (zip with the layers, or the analysis container image) from `packaging.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from policyhub.adapters.interaction_logs import DEAD_LETTER_PREFIX
from policyhub.resources import TABLES, GlobalIndex
from policyhub.settings import HEALTH_SOURCE, MODE, Mode
from policyhub.settings import MAX_ARTIFACT_BYTES as MAX_ARTIFACT_BYTES_SETTING

from .catalog import Access, FunctionSpec, Level
from .config import StackConfig
from .data import CURSOR_SECRET_ENV, DataStore
from .logs import LOG_STREAM_ENV
from .nag import acknowledge, logical_id, nag_resource
from .packaging import ANALYSIS_TMP_MIB, Packaging, analysis_image_code, packaging_of

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
ASSET_EXCLUDE = ["**/__pycache__", "**/*.pyc", "*.egg-info"]

TABLE_READ_ACTIONS: tuple[str, ...] = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
)
TABLE_WRITE_ACTIONS: tuple[str, ...] = (
    *TABLE_READ_ACTIONS,
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
)
OBJECT_READ_ACTIONS: tuple[str, ...] = ("s3:GetObject", "s3:GetObjectVersion")
OBJECT_WRITE_ACTIONS: tuple[str, ...] = (*OBJECT_READ_ACTIONS, "s3:PutObject")

# Artifacts arrive base64 in a JSON body that must fit Lambda's 6 MiB invocation payload:
# 4 MiB of model is about 5.4 MiB of base64 (decision 052).
MAX_ARTIFACT_BYTES_ENV = MAX_ARTIFACT_BYTES_SETTING.name
MAX_ARTIFACT_BYTES = 4 * 1024 * 1024

# `policyhub.adapters.cloudwatch_alarms.alarm_names`: policyhub-rollout-<rollout id>-<kind>.
ROLLOUT_ALARM_PREFIX = "policyhub-rollout-"
ROLLOUT_ALARM_ACTIONS: tuple[str, ...] = ("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms")
HEALTH_METRICS_ACTION = "cloudwatch:GetMetricData"


@dataclass(frozen=True)
class Destinations:
    """What functions may be granted access to."""

    data: DataStore
    log_stream_name: str
    log_stream_arn: str


class ServingFunctions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        specs: tuple[FunctionSpec, ...],
        destinations: Destinations,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._dest = destinations
        self.shared_layer = lambda_.LayerVersion(
            self,
            "SharedCodeLayer",
            description="policyhub package (domain, services, adapters, ml, api).",
            code=lambda_.Code.from_asset(str(config.shared_layer_dir), exclude=ASSET_EXCLUDE),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.deps_layer = lambda_.LayerVersion(
            self,
            "DependencyLayer",
            description="Serving dependencies: onnxruntime, numpy, pydantic, powertools, orjson.",
            code=lambda_.Code.from_asset(str(config.deps_layer_dir), exclude=[".stamp"]),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.roles: dict[str, iam.Role] = {}
        self.specs: dict[str, FunctionSpec] = {spec.name: spec for spec in specs}
        self.functions: dict[str, lambda_.Function] = {
            spec.name: self._function(spec) for spec in specs
        }

    def with_access(self, flag: str) -> list[tuple[lambda_.Function, iam.Role]]:
        """Functions whose `Access` sets `flag` (e.g. "start_rollouts"), with their roles."""
        return [
            (self.functions[name], self.roles[name])
            for name, spec in self.specs.items()
            if getattr(spec.access, flag)
        ]

    def _function(self, spec: FunctionSpec) -> lambda_.Function:
        scope = Construct(self, _pascal(spec.name))
        log_group = logs.LogGroup(
            scope,
            "Logs",
            retention=retention_days(self._config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            scope,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"policyhub function {spec.name}",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Log streams are created by Lambda with generated names inside this function's own "
            "log group; the group ARN with :* is the narrowest grant that covers them.",
            finding=f"Resource::<{logical_id(log_group)}.Arn>",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions"
            + (", nor does cloudwatch:GetMetricData (the rollout health read)."
               if spec.access.health_metrics else "."),
            finding="Resource::*",
        )  # fmt: skip
        environment = self._environment(spec.access)
        grant(role, spec.access, self._dest)
        self.roles[spec.name] = role

        if packaging_of(spec) is Packaging.IMAGE:  # decision 117
            return lambda_.DockerImageFunction(
                scope,
                "Function",
                description=spec.description[:256],
                architecture=ARCHITECTURE,
                code=analysis_image_code(spec),
                memory_size=spec.memory_mb,
                ephemeral_storage_size=Size.mebibytes(ANALYSIS_TMP_MIB),
                timeout=Duration.seconds(spec.timeout_seconds),
                role=role,
                log_group=log_group,
                tracing=lambda_.Tracing.ACTIVE,
                environment=environment,
            )
        fn = lambda_.Function(
            scope,
            "Function",
            description=spec.description[:256],
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=lambda_.Code.from_asset(
                str(self._config.functions_dir / spec.name), exclude=ASSET_EXCLUDE
            ),
            handler="handler.handler",
            layers=[self.deps_layer, self.shared_layer],
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_seconds),
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment=environment,
        )
        acknowledge(
            fn,
            "AwsSolutions-L1",
            "python3.12 is pinned on purpose: the dependency layer is built from cp312 aarch64 "
            "wheels (decision 051); moving the runtime means rebuilding the layer with it.",
        )
        return fn

    def _environment(self, access: Access) -> dict[str, str]:
        return environment(access, self._dest, self._config.log_level)


def environment(access: Access, dest: Destinations, log_level: str) -> dict[str, str]:
    """Settings of code with `access`: Powertools, every resource name, and what it may use
    (`policyhub.settings`; the state machine and ECS runner settings are added by the
    constructs that own them, `grant_start` and `grant_run`)."""
    env = {
        "POWERTOOLS_SERVICE_NAME": "policyhub",
        "POWERTOOLS_METRICS_NAMESPACE": "PolicyHub",
        "LOG_LEVEL": log_level,
        # Lambda and ECS are detected anyway; saying it makes the template readable.
        MODE.name: Mode.AWS.value,
    }
    for env_var, table in dest.data.tables.items():
        env[env_var] = table.table_name
    for env_var, bucket in dest.data.buckets.items():
        env[env_var] = bucket.bucket_name
    if access.artifacts is not Level.NONE:
        env[MAX_ARTIFACT_BYTES_ENV] = str(MAX_ARTIFACT_BYTES)
    if access.signing_secret:
        env[CURSOR_SECRET_ENV] = dest.data.signing_secret.secret_arn
    if access.log_stream:
        env[LOG_STREAM_ENV] = dest.log_stream_name
    if access.health_metrics:
        env[HEALTH_SOURCE.name] = "cloudwatch"
    return env


def grant(role: iam.Role, access: Access, dest: Destinations) -> None:
    """The statements `access` needs, written out (decision 057); wildcards acknowledged."""
    data = dest.data
    if access.table is not Level.NONE:
        actions = TABLE_READ_ACTIONS if access.table is Level.READ else TABLE_WRITE_ACTIONS
        for spec in TABLES:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=list(actions),
                    resources=table_resources(data.tables[spec.env_var], spec.indexes),
                )
            )
    for level, bucket in (
        (access.artifacts, data.artifact_bucket),
        (access.interactions, data.interaction_bucket),
    ):
        if level is Level.NONE:
            continue
        actions = OBJECT_READ_ACTIONS if level is Level.READ else OBJECT_WRITE_ACTIONS
        role.add_to_policy(
            iam.PolicyStatement(actions=list(actions), resources=[bucket.arn_for_objects("*")])
        )
        # ListBucket turns a missing key into 404 instead of 403 and lets readers page logs.
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Object keys are per tenant/agent/version and created at run time; the grant is "
            "limited to this one bucket of the stack.",
            finding=f"Resource::<{logical_id(bucket)}.Arn>/*",
        )
    if access.signing_secret:
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[data.signing_secret.secret_arn],
            )
        )
    if access.rollout_alarms:
        role.add_to_policy(
            iam.PolicyStatement(
                actions=list(ROLLOUT_ALARM_ACTIONS), resources=[rollout_alarm_arns(role)]
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Each rollout gets its own alarms named policyhub-rollout-<rollout id>-<kind>, "
            "created at run time; the grant is limited to alarms with that prefix.",
            finding=f"Resource::{nag_resource(role, rollout_alarm_arns(role))}",
        )
    if access.health_metrics:
        # GetMetricData has no resource-level permissions (acknowledged with X-Ray's `*`).
        role.add_to_policy(
            iam.PolicyStatement(actions=[HEALTH_METRICS_ACTION], resources=["*"])
        )
    if access.log_stream:
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
                resources=[dest.log_stream_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[data.interaction_bucket.arn_for_objects(f"{DEAD_LETTER_PREFIX}/*")],
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Records Firehose refuses are written once each under a new key in the "
            "dead-letter prefix of the interaction bucket; nothing else is writable.",
            finding=(
                f"Resource::<{logical_id(data.interaction_bucket)}.Arn>/{DEAD_LETTER_PREFIX}/*"
            ),
        )


def rollout_alarm_arns(scope: Construct) -> str:
    return Stack.of(scope).format_arn(
        service="cloudwatch",
        resource="alarm",
        resource_name=f"{ROLLOUT_ALARM_PREFIX}*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def table_resources(table: dynamodb.Table, indexes: tuple[GlobalIndex, ...]) -> list[str]:
    """The table and its named indexes: no `index/*` wildcard."""
    return [table.table_arn, *(f"{table.table_arn}/index/{ix.name}" for ix in indexes)]


RETENTION_BY_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention_days(days: int) -> logs.RetentionDays:
    try:
        return RETENTION_BY_DAYS[days]
    except KeyError:
        raise ValueError(
            f"log retention {days} days is not one CloudWatch offers: {sorted(RETENTION_BY_DAYS)}"
        ) from None


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))

