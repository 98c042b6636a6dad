"""The rollout workflow: a Standard state machine that only loops, and alarm-triggered rollback.

The brain is `functions/rollout_controller` (`RolloutService.tick`): it judges the current step,
applies the decision and says `{done, wait_seconds, state, decision}`. Step Functions only loops
invoke -> choice -> wait; the execution is started by the promote route with the rollout id as
its name (idempotent). An execution makes at most `MAX_LOOKS_PER_EXECUTION` looks, then
continues the rollout in a new execution named `<rollout id>-<generation>`, so a rollout that
holds for weeks never reaches Step Functions' 25,000-event history limit (decision 106).
Per-rollout CloudWatch alarms (`policyhub-rollout-*`, created by the code) reach
`functions/rollout_alarm` through an EventBridge rule the moment they enter ALARM.
See decisions 080 and 081.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from policyhub.settings import ROLLOUT_STATE_MACHINE

from .functions import ROLLOUT_ALARM_PREFIX
from .nag import acknowledge, logical_id

ROLLOUT_STATE_MACHINE_ENV = ROLLOUT_STATE_MACHINE.name
EXECUTION_INPUT_FIELDS = ("tenant_id", "agent_type", "rollout_id")
MAX_LOOKS_PER_EXECUTION = 500
"""A look writes about 11 history events (task 5, choice 2, wait 2, count 2) and up to ~30 more
when its invoke is retried six times; 500 looks stay under the 25,000-event limit even so."""
TICK_FIELDS = ("done", "wait_seconds", "state", "decision")
TICK_PATH = "$.tick"
"""Where the controller's answer lands; the execution input's ids stay beside it."""


class RolloutWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        controller: lambda_.IFunction,
        alarm_rollback: lambda_.IFunction,
        retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # Step Functions vended logs: this prefix keeps the account's log resource policy
            # small (one wildcard entry for all state machines).
            log_group_name=f"/aws/vendedlogs/states/{stack.stack_name}-rollouts",
            retention=retention,
            removal_policy=RemovalPolicy.DESTROY,
        )

        judge = tasks.LambdaInvoke(
            self,
            "Judge step",
            comment="RolloutService.tick: judge the current step and apply the decision.",
            lambda_function=controller,
            payload=sfn.TaskInput.from_object(
                {f"{name}.$": f"$.{name}" for name in EXECUTION_INPUT_FIELDS}
            ),
            result_selector={f"{name}.$": f"$.Payload.{name}" for name in TICK_FIELDS},
            result_path=TICK_PATH,
            retry_on_service_exceptions=True,
        )
        # A transient error inside the controller (a throttled read, a timeout) must not end
        # the loop: a rollout without its loop would never advance nor roll back on its own.
        judge.add_retry(
            errors=["States.TaskFailed", "States.Timeout"],
            interval=Duration.seconds(10),
            max_attempts=6,
            backoff_rate=2,
            max_delay=Duration.minutes(5),
        )
        wait = sfn.Wait(
            self,
            "Wait before next look",
            time=sfn.WaitTime.seconds_path(f"{TICK_PATH}.wait_seconds"),
        )
        ids = {f"{name}.$": f"$.{name}" for name in EXECUTION_INPUT_FIELDS}
        count = sfn.Pass(
            self,
            "Count the look",
            parameters={
                **ids,
                "generation.$": "$.generation",
                "looks": sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.looks"), 1),
            },
        )
        start_counting = sfn.Pass(
            self,
            "Start counting",
            comment="An execution started without counters (e.g. by hand) is generation 0.",
            parameters={**ids, "generation": 0, "looks": 0},
        )
        name = f"{stack.stack_name}-rollouts"
        itself = sfn.StateMachine.from_state_machine_name(self, "Itself", name)
        next_generation = sfn.JsonPath.math_add(sfn.JsonPath.number_at("$.generation"), 1)
        continue_as_new = tasks.StepFunctionsStartExecution(
            self,
            "Continue in a new execution",
            comment=f"After {MAX_LOOKS_PER_EXECUTION} looks: the history stays far from its limit.",
            state_machine=itself,
            name=sfn.JsonPath.format(
                "{}-{}", sfn.JsonPath.string_at("$.rollout_id"), next_generation
            ),
            input=sfn.TaskInput.from_object(
                {**ids, "generation": next_generation, "looks": 0}
            ),
            associate_with_parent=True,
            result_path=sfn.JsonPath.DISCARD,
        )
        continued = sfn.Succeed(self, "Continued", comment="The next execution drives it now.")
        # A retried start whose first attempt went through: the next execution runs already.
        continue_as_new.add_catch(
            continued, errors=["StepFunctions.ExecutionAlreadyExistsException"]
        )
        continue_as_new.add_retry(
            errors=["States.TaskFailed"],
            interval=Duration.seconds(5),
            max_attempts=6,
            backoff_rate=2,
        )
        done = sfn.Succeed(self, "Rollout ended", comment="Promoted, rolled back or aborted.")
        loop = judge.next(
            sfn.Choice(self, "Rollout over?")
            .when(sfn.Condition.boolean_equals(f"{TICK_PATH}.done", True), done)
            .when(
                sfn.Condition.number_greater_than_equals("$.looks", MAX_LOOKS_PER_EXECUTION - 1),
                continue_as_new.next(continued),
            )
            .otherwise(wait.next(count.next(judge)))
        )
        definition = (
            sfn.Choice(self, "Counting?")
            .when(sfn.Condition.is_present("$.looks"), loop)
            .otherwise(start_counting.next(judge))
        )

        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            comment="policyhub rollout: shadow -> canary steps -> production, one loop.",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True
            ),
        )
        role = self.state_machine.role
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Step Functions log delivery (logs:*LogDelivery, DescribeResourcePolicies) and X-Ray "
            "PutTraceSegments support no resource-level permissions.",
            finding="Resource::*",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Invoking the controller by ARN may name a version or alias (`<arn>:*`); the grant "
            "is still this one function.",
            finding=f"Resource::<{logical_id(controller)}.Arn>:*",
        )

        self.alarm_rule = events.Rule(
            self,
            "AlarmRollback",
            description="A per-rollout alarm entered ALARM: roll that rollout back at once.",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                detail={
                    "alarmName": [{"prefix": ROLLOUT_ALARM_PREFIX}],
                    "state": {"value": ["ALARM"]},
                },
            ),
        )
        self.alarm_rule.add_target(
            targets.LambdaFunction(
                alarm_rollback,
                retry_attempts=4,
                max_event_age=Duration.hours(1),
            )
        )

    def grant_start(self, fn: lambda_.Function, role: iam.Role) -> None:
        """Let `fn` start executions (promote) and tell it which state machine."""
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"],
                resources=[self.state_machine.state_machine_arn],
            )
        )
        fn.add_environment(ROLLOUT_STATE_MACHINE_ENV, self.state_machine.state_machine_arn)
