"""Decision and feedback logs: a Firehose stream into the interaction bucket.

Records are the JSON lines of the shared data contract (one per PutRecord, newline included,
see `policyhub.adapters.interaction_logs`). Firehose partitions them by the record's own
tenant, agent and date of `at` into the same layout the local stack writes and the readers
list, uncompressed. See decision 053.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from policyhub.adapters.interaction_logs import DEAD_LETTER_PREFIX
from policyhub.adapters.interaction_logs import PREFIX as LOG_PREFIX
from policyhub.settings import LOG_STREAM

from .nag import acknowledge, logical_id

LOG_STREAM_ENV = LOG_STREAM.name

PARTITION_QUERY = "{tenant_id: .tenant_id, agent_type: .agent_type, date: .at[0:10]}"


def firehose_prefix(tenant_id: str, agent_type: str, date: str) -> str:
    """The S3 prefix of `interaction_logs.partition()`, with Firehose placeholders in it."""
    return f"{LOG_PREFIX}/tenant={tenant_id}/agent={agent_type}/date={date}/"


PREFIX = firehose_prefix(
    "!{partitionKeyFromQuery:tenant_id}",
    "!{partitionKeyFromQuery:agent_type}",
    "!{partitionKeyFromQuery:date}",
)
ERROR_PREFIX = (
    f"{DEAD_LETTER_PREFIX}/firehose/!{{firehose:error-output-type}}/!{{timestamp:yyyy-MM-dd}}/"
)


class InteractionLogStream(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup(self, "DeliveryLogs", retention=retention)
        log_stream = log_group.add_stream("S3Delivery")

        role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[bucket.bucket_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects("*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:PutLogEvents"],
                resources=[
                    Stack.of(self).format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=(
                            f"{log_group.log_group_name}:log-stream:{log_stream.log_stream_name}"
                        ),
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Firehose writes objects under partition prefixes it computes per record "
            "(tenant/agent/date), so the object ARN ends in /*; the bucket is this stream's "
            "own interaction bucket.",
            finding=f"Resource::<{logical_id(bucket)}.Arn>/*",
        )

        self.stream = firehose.CfnDeliveryStream(
            self,
            "Stream",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=(
                firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                    key_type="AWS_OWNED_CMK"
                )
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket.bucket_arn,
                role_arn=role.role_arn,
                prefix=PREFIX,
                error_output_prefix=ERROR_PREFIX,
                # The readers (training, compare) read plain JSON lines.
                compression_format="UNCOMPRESSED",
                # Dynamic partitioning needs a buffer of at least 64 MiB.
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=300, size_in_m_bs=64
                ),
                dynamic_partitioning_configuration=firehose.CfnDeliveryStream.DynamicPartitioningConfigurationProperty(
                    enabled=True,
                    retry_options=firehose.CfnDeliveryStream.RetryOptionsProperty(
                        duration_in_seconds=300
                    ),
                ),
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[
                        firehose.CfnDeliveryStream.ProcessorProperty(
                            type="MetadataExtraction",
                            parameters=[
                                _param("MetadataExtractionQuery", PARTITION_QUERY),
                                _param("JsonParsingEngine", "JQ-1.6"),
                            ],
                        ),
                    ],
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=log_group.log_group_name,
                    log_stream_name=log_stream.log_stream_name,
                ),
            ),
        )
        # Firehose checks its S3 access when the stream is created: wait for the policy.
        self.stream.node.add_dependency(role.node.find_child("DefaultPolicy"))
        self.stream_name: str = self.stream.ref
        self.stream_arn: str = self.stream.attr_arn


def _param(name: str, value: str) -> firehose.CfnDeliveryStream.ProcessorParameterProperty:
    return firehose.CfnDeliveryStream.ProcessorParameterProperty(
        parameter_name=name, parameter_value=value
    )


