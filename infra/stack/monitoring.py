"""Dashboard per agent, service alarms and the SNS topic they notify.

The serving code emits, in namespace `PolicyHub` (decision 054):
  Requests, Errors, Successes, Failures (Count) and Latency (Milliseconds)
  with exactly the dimension sets [agent_type, variant] and [rollout_id, variant].
The `Rollbacks` metric decision 054 planned is not emitted by the code (yet): rollbacks are shown
from what AWS counts itself — rollout workflow executions and alarm-triggered rollbacks
(decision 084).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .config import StackConfig
from .rollouts import RolloutWorkflow
from .training import Training

NAMESPACE = "PolicyHub"
SERVED_VARIANTS = ("production", "canary", "experiment", "retrieval")
PERIOD = Duration.minutes(5)


def rule_triggers(rule: events.IRule, label: str) -> cw.Metric:
    return cw.Metric(
        namespace="AWS/Events",
        metric_name="TriggeredRules",
        dimensions_map={"RuleName": rule.rule_name},
        statistic="Sum",
        period=PERIOD,
        label=label,
    )


def serving_metric(name: str, agent_type: str, variant: str, statistic: str) -> cw.Metric:
    return cw.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={"agent_type": agent_type, "variant": variant},
        statistic=statistic,
        period=PERIOD,
        label=variant,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        api: apigw.RestApi,
        access_logs: logs.ILogGroup,
        rollouts: RolloutWorkflow,
        training: Training,
        alarm_rollback: lambda_.IFunction,
        training_schedule: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the policyhub alarm topic; CloudWatch may publish to it.",
            enable_key_rotation=True,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    iam.ServicePrincipal("events.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # "*" in a key policy means this key.
            )
        )
        self.topic = sns.Topic(self, "AlarmTopic", master_key=key, enforce_ssl=True)
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))

        throttled = logs.MetricFilter(
            self,
            "ThrottledRequests",
            log_group=access_logs,
            metric_namespace=NAMESPACE,
            metric_name="ApiThrottled",
            filter_pattern=logs.FilterPattern.string_value("$.status", "=", "429"),
            metric_value="1",
            default_value=0,
        ).metric(statistic="Sum", period=PERIOD)

        self.alarms = [
            cw.Alarm(
                self,
                "Api5xx",
                alarm_description="policyhub API answered 5xx (a 5xx is always a bug or outage).",
                metric=api.metric_server_error(statistic="Sum", period=PERIOD),
                threshold=config.api_5xx_alarm_threshold,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "ApiThrottled",
                alarm_description="policyhub API throttled callers (429) at the stage limit.",
                metric=throttled,
                threshold=config.throttle_alarm_threshold,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
        ]
        machine = rollouts.state_machine
        failed_task_rule = training.notify_failed_tasks(self.topic)
        self.alarms += [
            cw.Alarm(
                self,
                "RolloutWorkflowFailed",
                alarm_description=(
                    "A rollout workflow execution failed, timed out or was aborted: that rollout "
                    "has no loop any more; roll it back or abort it (docs/deploy.md)."
                ),
                metric=cw.MathExpression(
                    expression="failed + timedout + aborted",
                    using_metrics={
                        "failed": machine.metric_failed(statistic="Sum", period=PERIOD),
                        "timedout": machine.metric_timed_out(statistic="Sum", period=PERIOD),
                        "aborted": machine.metric_aborted(statistic="Sum", period=PERIOD),
                    },
                    label="ended without success",
                    period=PERIOD,
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "AlarmRollbackErrors",
                alarm_description="The alarm-triggered rollback function failed.",
                metric=alarm_rollback.metric_errors(statistic="Sum", period=PERIOD),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            cw.Alarm(
                self,
                "TrainingScheduleErrors",
                alarm_description="The 6-hour training schedule function failed.",
                metric=training_schedule.metric_errors(statistic="Sum", period=PERIOD),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))

        self.dashboard = cw.Dashboard(
            self, "Dashboard", default_interval=Duration.hours(6)
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="API requests and errors",
                left=[
                    api.metric_count(statistic="Sum", period=PERIOD),
                    api.metric_client_error(statistic="Sum", period=PERIOD),
                    api.metric_server_error(statistic="Sum", period=PERIOD),
                    throttled,
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="API latency p95 (ms)",
                left=[api.metric_latency(statistic="p95", period=PERIOD)],
                width=8,
            ),
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=8),
        )
        for agent in config.dashboard_agents:
            self.dashboard.add_widgets(*self._agent_row(agent))
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Requests by agent and variant (all agents)",
                left=[
                    cw.MathExpression(
                        expression=(
                            f"SEARCH('{{{NAMESPACE},agent_type,variant}} "
                            "MetricName=\"Requests\"', 'Sum', 300)"
                        ),
                        label="",
                        period=PERIOD,
                    )
                ],
                width=24,
            )
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Rollout workflow executions",
                left=[
                    machine.metric_started(statistic="Sum", period=PERIOD, label="started"),
                    machine.metric_succeeded(statistic="Sum", period=PERIOD, label="ended"),
                    machine.metric_failed(statistic="Sum", period=PERIOD, label="failed"),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Alarm-triggered rollbacks",
                left=[
                    rule_triggers(rollouts.alarm_rule, "rollout alarms in ALARM"),
                    alarm_rollback.metric_errors(
                        statistic="Sum", period=PERIOD, label="rollback errors"
                    ),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Training",
                left=[
                    training_schedule.metric_invocations(
                        statistic="Sum", period=PERIOD, label="schedule runs"
                    ),
                    rule_triggers(failed_task_rule, "failed training tasks"),
                ],
                width=8,
            ),
        )

    def _agent_row(self, agent: str) -> list[cw.IWidget]:
        success_rates: list[cw.IMetric] = []
        for i, variant in enumerate(SERVED_VARIANTS):
            success_rates.append(
                cw.MathExpression(
                    expression=f"100 * s{i} / (s{i} + f{i})",
                    using_metrics={
                        f"s{i}": serving_metric("Successes", agent, variant, "Sum"),
                        f"f{i}": serving_metric("Failures", agent, variant, "Sum"),
                    },
                    label=variant,
                    period=PERIOD,
                )
            )
        return [
            cw.GraphWidget(
                title=f"{agent}: traffic by variant",
                left=[serving_metric("Requests", agent, v, "Sum") for v in SERVED_VARIANTS],
                stacked=True,
                width=8,
            ),
            cw.GraphWidget(
                title=f"{agent}: success rate % by variant",
                left=success_rates,
                left_y_axis=cw.YAxisProps(min=0, max=100),
                width=8,
            ),
            cw.GraphWidget(
                title=f"{agent}: latency p95 (ms) by variant",
                left=[serving_metric("Latency", agent, v, "p95") for v in SERVED_VARIANTS],
                width=8,
            ),
        ]
