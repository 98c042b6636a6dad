"""Decision and feedback logs: a Firehose stream into the interaction bucket, as Parquet.

Writers put the JSON lines of the shared data contract (one per PutRecord, newline included,
see `policyhub.adapters.interaction_logs`). Firehose partitions them by the record's own
tenant, agent, date and hour of `at`, and the line's `split` (decision 131), into the layout the
local stack writes and the readers list (decision 053), and converts each batch to Parquet
(GZIP pages, `.parquet` objects) with the columns of the Glue table `InteractionTable` defines
from `interaction_columns.COLUMNS`, the one schema of the records. Records it cannot
partition or convert land under the error prefix. See decision 116.
"""

from __future__ import annotations

import re

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from policyhub.adapters.interaction_logs import DEAD_LETTER_PREFIX, UNSPLIT
from policyhub.adapters.interaction_logs import PREFIX as LOG_PREFIX
from policyhub.domain.holdout import SPLITS
from policyhub.domain.interaction_columns import COLUMNS, hive
from policyhub.settings import LOG_STREAM

from .nag import acknowledge, logical_id

LOG_STREAM_ENV = LOG_STREAM.name

# `at` is `utc_iso`'s `2026-01-02T03:04:05.000006Z`: its date, then its hour. `split` is not a
# record field: `FirehoseSink` adds it to the line, and the Parquet conversion leaves it out; a
# line without it (a writer from before decision 131, during a deploy) goes to UNSPLIT, which
# the readers read as holding both sides, instead of failing to partition.
PARTITION_QUERY = (
    "{tenant_id: .tenant_id, agent_type: .agent_type, date: .at[0:10], hour: .at[11:13], "
    f'split: (.split // "{UNSPLIT}")}}'
)


def firehose_prefix(tenant_id: str, agent_type: str, date: str, hour: str, split: str) -> str:
    """The S3 prefix of `interaction_logs.partition()`, with Firehose placeholders in it."""
    return (
        f"{LOG_PREFIX}/tenant={tenant_id}/agent={agent_type}/date={date}/hour={hour}/"
        f"split={split}/"
    )


PREFIX = firehose_prefix(
    "!{partitionKeyFromQuery:tenant_id}",
    "!{partitionKeyFromQuery:agent_type}",
    "!{partitionKeyFromQuery:date}",
    "!{partitionKeyFromQuery:hour}",
    "!{partitionKeyFromQuery:split}",
)
ERROR_PREFIX = (
    f"{DEAD_LETTER_PREFIX}/firehose/!{{firehose:error-output-type}}/!{{timestamp:yyyy-MM-dd}}/"
)
# Firehose's Parquet pages: GZIP, its best ratio (it offers UNCOMPRESSED, SNAPPY and GZIP; no
# ZSTD). The readers fetch whole objects over HTTP, so bytes moved matter more than the CPU
# gzip costs them (decision 116).
PARQUET_COMPRESSION = "GZIP"
# Conversion and dynamic partitioning each need at least 64 MiB of buffer.
BUFFER_MIB = 64
BUFFER_SECONDS = 300

TABLE_NAME = "interactions"
# The partition columns are the `key=` parts of the prefix, in its order.
PARTITION_KEYS = ("tenant", "agent", "date", "hour", "split")
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
GLUE_READ_ACTIONS: tuple[str, ...] = (
    "glue:GetTable",
    "glue:GetTableVersion",
    "glue:GetTableVersions",
)
"""What Firehose's record format conversion reads of the table (on catalog, database, table)."""


def glue_columns() -> list[tuple[str, str]]:
    """(name, Hive type) of every record field: the table's columns."""
    return [(name, hive(column_type)) for name, column_type in COLUMNS.items()]


def glue_database_name(stack_name: str) -> str:
    """Glue (and Athena) names are lower case letters, digits and underscores."""
    return re.sub(r"[^a-z0-9_]", "_", stack_name.lower()) + "_interactions"


class InteractionTable(Construct):
    """The Glue database and table of the interaction logs: the schema Firehose converts with,
    and what Athena or Spark read the bucket's `interactions/` prefix through."""

    def __init__(self, scope: Construct, construct_id: str, *, bucket: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.database_name = glue_database_name(stack.stack_name)
        self.table_name = TABLE_NAME
        database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="policyhub decision and feedback records",
            ),
        )
        location = f"s3://{bucket.bucket_name}/{LOG_PREFIX}/"
        self.table = glue.CfnTable(
            self,
            "Table",
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=self.table_name,
                description="Decision and feedback records (interaction_columns.COLUMNS).",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "parquet",
                    "EXTERNAL": "TRUE",
                    "parquet.compression": PARQUET_COMPRESSION,
                    # Athena finds partitions from the prefix itself (no crawler, no
                    # MSCK REPAIR); a query names its tenant and agent, as the readers do.
                    "projection.enabled": "true",
                    "projection.tenant.type": "injected",
                    "projection.agent.type": "injected",
                    "projection.date.type": "date",
                    "projection.date.format": "yyyy-MM-dd",
                    "projection.date.range": "2020-01-01,NOW",
                    "projection.hour.type": "integer",
                    "projection.hour.range": "0,23",
                    "projection.hour.digits": "2",
                    "projection.split.type": "enum",
                    "projection.split.values": ",".join((*SPLITS, UNSPLIT)),
                    "storage.location.template": (
                        f"s3://{bucket.bucket_name}/"
                        + firehose_prefix(*(f"${{{key}}}" for key in PARTITION_KEYS))
                    ),
                },
                partition_keys=[
                    glue.CfnTable.ColumnProperty(name=key, type="string") for key in PARTITION_KEYS
                ],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[
                        glue.CfnTable.ColumnProperty(name=name, type=hive_type)
                        for name, hive_type in glue_columns()
                    ],
                    location=location,
                    input_format=PARQUET_INPUT_FORMAT,
                    output_format=PARQUET_OUTPUT_FORMAT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=PARQUET_SERDE,
                        parameters={"serialization.format": "1"},
                    ),
                ),
            ),
        )
        self.table.node.add_dependency(database)

    def arns(self) -> list[str]:
        """The catalog, database and table: the resources of a table read."""
        stack = Stack.of(self)

        def arn(resource: str, name: str | None = None) -> str:
            return stack.format_arn(service="glue", resource=resource, resource_name=name)

        return [
            arn("catalog"),
            arn("database", self.database_name),
            arn("table", f"{self.database_name}/{self.table_name}"),
        ]


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
        self.table = InteractionTable(self, "Table", bucket=bucket)
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
        role.add_to_policy(
            iam.PolicyStatement(actions=list(GLUE_READ_ACTIONS), resources=self.table.arns())
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
                # Conversion failures land here too (error-output-type
                # format-conversion-failed), as the JSON they arrived as.
                error_output_prefix=ERROR_PREFIX,
                # Parquet compresses its own pages; S3-level compression must stay off.
                compression_format="UNCOMPRESSED",
                file_extension=".parquet",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=BUFFER_SECONDS, size_in_m_bs=BUFFER_MIB
                ),
                data_format_conversion_configuration=self._conversion(role),
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
        # Firehose checks its S3 and Glue access when the stream is created: wait for both.
        self.stream.node.add_dependency(role.node.find_child("DefaultPolicy"))
        self.stream.node.add_dependency(self.table.table)
        self.stream_name: str = self.stream.ref
        self.stream_arn: str = self.stream.attr_arn

    def _conversion(
        self, role: iam.IRole
    ) -> firehose.CfnDeliveryStream.DataFormatConversionConfigurationProperty:
        """JSON lines in (OpenX SerDe), Parquet out, columns from the Glue table."""
        stream = firehose.CfnDeliveryStream
        stack = Stack.of(self)
        return stream.DataFormatConversionConfigurationProperty(
            enabled=True,
            input_format_configuration=stream.InputFormatConfigurationProperty(
                deserializer=stream.DeserializerProperty(
                    open_x_json_ser_de=stream.OpenXJsonSerDeProperty()
                )
            ),
            output_format_configuration=stream.OutputFormatConfigurationProperty(
                serializer=stream.SerializerProperty(
                    parquet_ser_de=stream.ParquetSerDeProperty(compression=PARQUET_COMPRESSION)
                )
            ),
            schema_configuration=stream.SchemaConfigurationProperty(
                catalog_id=stack.account,
                region=stack.region,
                database_name=self.table.database_name,
                table_name=self.table.table_name,
                role_arn=role.role_arn,
                version_id="LATEST",
            ),
        )


def _param(name: str, value: str) -> firehose.CfnDeliveryStream.ProcessorParameterProperty:
    return firehose.CfnDeliveryStream.ProcessorParameterProperty(
        parameter_name=name, parameter_value=value
    )
