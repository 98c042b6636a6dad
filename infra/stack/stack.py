"""The policyhub stack, composed of one construct per capability.

data (tables, buckets, secret) -> logs (Firehose) -> functions -> api -> rollout workflow
(Step Functions + alarm rule) -> training (schedule, VPC, Fargate task) -> monitoring.
Capabilities a function's `Access` asks for that live in later constructs (starting rollouts,
running training tasks) are granted once those exist.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from .api import PolicyApi
from .catalog import (
    AUTHORIZER,
    ROLLOUT_ALARM,
    ROLLOUT_CONTROLLER,
    TRAINING_SCHEDULE,
    all_function_specs,
)
from .config import StackConfig
from .data import CURSOR_SECRET_ENV, DataStore
from .functions import Destinations, ServingFunctions, retention_days
from .logs import LOG_STREAM_ENV, InteractionLogStream
from .monitoring import Monitoring
from .rollouts import ROLLOUT_STATE_MACHINE_ENV, RolloutWorkflow
from .training import Training


def output_key(env_var: str) -> str:
    """`POLICYHUB_TABLE` -> `PolicyhubTable`: stack output key of a resource env var."""
    return "".join(part.capitalize() for part in env_var.split("_"))


class PolicyHubStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = StackConfig.from_context(self)
        retention = retention_days(self.config.log_retention_days)

        self.data = DataStore(self, "Data")
        self.logs = InteractionLogStream(
            self, "InteractionLogs", bucket=self.data.interaction_bucket, retention=retention
        )
        destinations = Destinations(
            data=self.data,
            log_stream_name=self.logs.stream_name,
            log_stream_arn=self.logs.stream_arn,
        )
        self.functions = ServingFunctions(
            self,
            "Functions",
            config=self.config,
            specs=all_function_specs(),
            destinations=destinations,
        )
        fns = self.functions.functions
        self.api = PolicyApi(
            self,
            "Api",
            config=self.config,
            functions=self.functions.functions,
            authorizer_function=self.functions.functions[AUTHORIZER.name],
        )
        self.rollouts = RolloutWorkflow(
            self,
            "Rollouts",
            controller=fns[ROLLOUT_CONTROLLER.name],
            alarm_rollback=fns[ROLLOUT_ALARM.name],
            retention=retention,
        )
        for fn, role in self.functions.with_access("start_rollouts"):
            self.rollouts.grant_start(fn, role)
        self.training = Training(
            self,
            "Training",
            config=self.config,
            destinations=destinations,
            schedule_function=fns[TRAINING_SCHEDULE.name],
            retention=retention,
        )
        for fn, role in self.functions.with_access("run_training"):
            self.training.grant_run(fn, role)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=self.config,
            api=self.api.api,
            access_logs=self.api.access_logs,
            rollouts=self.rollouts,
            training=self.training,
            alarm_rollback=fns[ROLLOUT_ALARM.name],
            training_schedule=fns[TRAINING_SCHEDULE.name],
        )
        self._outputs()

    def _outputs(self) -> None:
        # API.md's base URL, `https://<id>.execute-api.<region>.amazonaws.com/<stage>/v1`.
        CfnOutput(self, "ApiUrl", value=f"{self.api.url}v1", description="POLICYHUB_API_URL")
        for env_var, table in self.data.tables.items():
            CfnOutput(self, output_key(env_var), value=table.table_name, description=env_var)
        for env_var, bucket in self.data.buckets.items():
            CfnOutput(self, output_key(env_var), value=bucket.bucket_name, description=env_var)
        CfnOutput(
            self,
            output_key(CURSOR_SECRET_ENV),
            value=self.data.signing_secret.secret_arn,
            description=CURSOR_SECRET_ENV,
        )
        CfnOutput(
            self,
            output_key(LOG_STREAM_ENV),
            value=self.logs.stream_name,
            description=LOG_STREAM_ENV,
        )
        CfnOutput(
            self,
            output_key(ROLLOUT_STATE_MACHINE_ENV),
            value=self.rollouts.state_machine.state_machine_arn,
            description=ROLLOUT_STATE_MACHINE_ENV,
        )
        CfnOutput(self, "TrainingCluster", value=self.training.cluster.cluster_name)
        CfnOutput(self, "TrainingLogGroup", value=self.training.log_group.log_group_name)
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        CfnOutput(self, "DashboardName", value=self.monitoring.dashboard.dashboard_name)
