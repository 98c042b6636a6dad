"""Training: the 6-hour schedule, the Fargate task that trains and registers, its network.

`functions/training_schedule` (EventBridge Scheduler, every 6 hours) and the train route start
jobs with `policyhub.adapters.ecs_jobs.EcsJobRunner`: one Fargate task of the container in
`functions/training_task/` per job, in isolated subnets that reach AWS only through VPC endpoints
(the runner asks for no public IP). The container registers the candidate itself and marks its
job succeeded or failed; a task that dies without doing so is reported by an EventBridge rule and
its job is failed when its lease runs out. See decisions 082 and 083.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from constructs import Construct

from policyhub.settings import (
    JOB_RUNNER,
    TRAINING_CLUSTER,
    TRAINING_CONTAINER,
    TRAINING_SECURITY_GROUP,
    TRAINING_SUBNETS,
    TRAINING_TASK_DEFINITION,
)

from .catalog import TRAINING_TASK, TRAINING_TASK_ACCESS
from .config import REPO_ROOT, StackConfig
from .functions import Destinations, environment, grant
from .nag import acknowledge, logical_id, nag_resource

CONTAINER_NAME = "training"
JOB_RUNNER_ENV = JOB_RUNNER.name
SCHEDULE_EVERY = Duration.hours(6)
STARTED_BY = "policyhub-training"
"""`startedBy` of every training task (`EcsJobRunner`)."""

INTERFACE_ENDPOINTS = (
    ("EcrApi", ec2.InterfaceVpcEndpointAwsService.ECR),
    ("EcrDocker", ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER),
    ("Logs", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS),
)
"""Pulling the image (ECR API + registry; layers come through the S3 gateway) and the awslogs
driver. DynamoDB and S3 use gateway endpoints (free)."""

DOCKERFILE = f"functions/{TRAINING_TASK}/Dockerfile"
# The Dockerfile builds from the repository root but needs only these; everything else (the
# virtualenv, build/, cdk.out/) stays out of the asset and its hash.
IMAGE_CONTEXT = (
    "pyproject.toml",
    "README.md",
    "layers/shared/python",
    f"functions/{TRAINING_TASK}",
)
IMAGE_EXCLUDE = [
    "*",
    *(f"!{path}" for path in IMAGE_CONTEXT),
    "**/__pycache__",
    "**/*.pyc",
    "**/*.egg-info",
]


class Training(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        destinations: Destinations,
        schedule_function: lambda_.IFunction,
        retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self._network(config)

        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=self.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="policyhub training task: read logs, register the candidate, finish job",
        )
        grant(self.task_role, TRAINING_TASK_ACCESS, destinations)
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            cpu=config.training_cpu,
            memory_limit_mib=config.training_memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.ARM64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
            task_role=self.task_role,
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.container = self.task_definition.add_container(
            CONTAINER_NAME,
            container_name=CONTAINER_NAME,
            image=self._image(config),
            essential=True,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="job", log_group=self.log_group),
            environment={
                **environment(TRAINING_TASK_ACCESS, destinations, config.log_level),
                # Lambda sets it for the functions; say it for the container too.
                "AWS_DEFAULT_REGION": Stack.of(self).region,
            },
        )
        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The environment holds resource names (table, buckets) and Powertools settings, "
            "none of them secret; the job's ids come as per-task overrides.",
        )
        execution_role = self.task_definition.obtain_execution_role()
        acknowledge(
            execution_role,
            "AwsSolutions-IAM5",
            "ecr:GetAuthorizationToken has no resource-level permissions; image pulls are "
            "granted on the one training repository.",
            finding="Resource::*",
        )

        schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description="EventBridge Scheduler: invoke the policyhub training schedule function",
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description="Start training for every agent with enough new interactions.",
            schedule=scheduler.ScheduleExpression.rate(SCHEDULE_EVERY),
            target=scheduler_targets.LambdaInvoke(
                schedule_function,
                role=schedule_role,
                retry_attempts=2,
                max_event_age=Duration.hours(1),
            ),
        )
        acknowledge(
            schedule_role,
            "AwsSolutions-IAM5",
            "EventBridge Scheduler's role may invoke the schedule function by ARN, which may "
            "name a version or alias (`<arn>:*`); the grant is this one function.",
            finding=f"Resource::<{logical_id(schedule_function)}.Arn>:*",
        )

    def _network(self, config: StackConfig) -> None:
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=config.training_azs,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="training", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22
                )
            ],
        )
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            description="policyhub training tasks: HTTPS out to the VPC endpoints only",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(),
            ec2.Port.tcp(443),
            "HTTPS to AWS APIs; the isolated subnets route it only to the VPC endpoints",
        )
        endpoint_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="policyhub training VPC endpoints: HTTPS from training tasks only",
            allow_all_outbound=False,
        )
        endpoint_group.add_ingress_rule(
            self.security_group, ec2.Port.tcp(443), "HTTPS from training tasks"
        )
        # Free gateway endpoints for the data; interface endpoints for pulling the image and
        # shipping logs. Nothing else is reachable: no NAT, no internet gateway.
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        self.vpc.add_gateway_endpoint("DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)
        for name, service in INTERFACE_ENDPOINTS:
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                private_dns_enabled=True,
                security_groups=[endpoint_group],
                open=False,
            )

    def _image(self, config: StackConfig) -> ecs.ContainerImage:
        if config.training_image:
            name, _, tag = config.training_image.partition(":")
            if not name or not tag:
                raise ValueError(
                    "policyhub:trainingImage must be '<ECR repository name>:<tag>', "
                    f"not {config.training_image!r}"
                )
            repository = ecr.Repository.from_repository_name(self, "ImageRepository", name)
            return ecs.ContainerImage.from_ecr_repository(repository, tag)
        # Staged at synth (no Docker needed); built and pushed by `cdk deploy` (Docker needed).
        return ecs.ContainerImage.from_asset(
            str(REPO_ROOT),
            file=DOCKERFILE,
            platform=ecr_assets.Platform.LINUX_ARM64,
            exclude=IMAGE_EXCLUDE,
            ignore_mode=IgnoreMode.DOCKER,
        )

    def grant_run(self, fn: lambda_.Function, role: iam.Role) -> None:
        """Let `fn` start training tasks and give it the runner's settings."""
        stack = Stack.of(self)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[self.task_definition.task_definition_arn],
                conditions={"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}},
            )
        )
        # RunTask with `tags` (the job id) needs TagResource on the task it creates.
        tasks_arn = stack.format_arn(
            service="ecs",
            resource="task",
            resource_name=f"{self.cluster.cluster_name}/*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:TagResource"],
                resources=[tasks_arn],
                conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Task ids are generated by ECS; tagging is allowed only on tasks of the training "
            "cluster and only while RunTask creates them (ecs:CreateAction).",
            finding=f"Resource::{nag_resource(role, tasks_arn)}",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[
                    self.task_role.role_arn,
                    self.task_definition.obtain_execution_role().role_arn,
                ],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        for key, value in self.runner_environment().items():
            fn.add_environment(key, value)

    def runner_environment(self) -> dict[str, str]:
        """What `policyhub.settings` reads to run jobs on ECS (`Need.RUN_TRAINING`)."""
        return {
            JOB_RUNNER_ENV: "ecs",
            TRAINING_CLUSTER.name: self.cluster.cluster_name,
            TRAINING_TASK_DEFINITION.name: self.task_definition.task_definition_arn,
            TRAINING_SUBNETS.name: ",".join(s.subnet_id for s in self.vpc.isolated_subnets),
            TRAINING_SECURITY_GROUP.name: self.security_group.security_group_id,
            TRAINING_CONTAINER.name: CONTAINER_NAME,
        }

    def notify_failed_tasks(self, topic: sns.ITopic) -> events.Rule:
        """A training task that stopped without exiting 0 (crash, OOM, kill, image pull)."""
        rule = events.Rule(
            self,
            "FailedTask",
            description="A policyhub training task stopped with a failure.",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Task State Change"],
                detail={
                    "clusterArn": [self.cluster.cluster_arn],
                    "lastStatus": ["STOPPED"],
                    "$or": [
                        {"containers": {"exitCode": [{"anything-but": 0}]}},
                        {"stopCode": ["TaskFailedToStart"]},
                    ],
                },
            ),
        )
        task = events.EventField.from_path("$.detail.taskArn")
        stop_code = events.EventField.from_path("$.detail.stopCode")
        reason = events.EventField.from_path("$.detail.stoppedReason")
        rule.add_target(
            targets.SnsTopic(
                topic,
                message=events.RuleTargetInput.from_text(
                    f"policyhub training task {task} stopped ({stop_code}): {reason}. "
                    "If the job did not record its own failure it is marked failed when its "
                    "lease runs out (GET /v1/policies/training-jobs shows it)."
                ),
            )
        )
        return rule

