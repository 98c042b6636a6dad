"""Registry tables, artifact and interaction buckets, and the signing secret.

Tables and buckets are created from `policyhub.resources` (the same specs the local embedded
stack uses), so key design and environment variable names cannot drift.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from policyhub.resources import ARTIFACT_BUCKET, BUCKETS, INTERACTION_BUCKET, TABLES, TableSpec
from policyhub.settings import CURSOR_SECRET_ARN

from .nag import acknowledge

CURSOR_SECRET_ENV = CURSOR_SECRET_ARN.name


def _string_key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class DataStore(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {
            spec.env_var: self._table(spec) for spec in TABLES
        }

        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        )
        acknowledge(
            self.access_log_bucket,
            "AwsSolutions-S1",
            "This is the server-access-log target of the other buckets; logging it into itself "
            "would loop.",
        )

        self.buckets: dict[str, s3.Bucket] = {}
        for spec in BUCKETS:
            self.buckets[spec.env_var] = s3.Bucket(
                self,
                spec.logical_id,
                versioned=True,
                encryption=s3.BucketEncryption.S3_MANAGED,
                enforce_ssl=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                server_access_logs_bucket=self.access_log_bucket,
                server_access_logs_prefix=f"{spec.default_name}/",
                removal_policy=RemovalPolicy.RETAIN,
                lifecycle_rules=[
                    s3.LifecycleRule(
                        abort_incomplete_multipart_upload_after=Duration.days(7),
                        noncurrent_version_expiration=Duration.days(90),
                    )
                ],
            )
        self.artifact_bucket = self.buckets[ARTIFACT_BUCKET.env_var]
        self.interaction_bucket = self.buckets[INTERACTION_BUCKET.env_var]

        self.signing_secret = secretsmanager.Secret(
            self,
            "SigningSecret",
            description="HMAC key that signs pagination cursors and decision ids.",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.signing_secret,
            "AwsSolutions-SMG4",
            "HMAC key of cursors and decision ids: an automatic rotation would make feedback on "
            "every decision issued before it a 404 and break open listings. Rotate by hand in a "
            "quiet window with `aws secretsmanager put-secret-value` (decision 057).",
        )

    def _table(self, spec: TableSpec) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            spec.logical_id,
            partition_key=_string_key(spec.partition_key),
            sort_key=_string_key(spec.sort_key),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            time_to_live_attribute=spec.ttl_attribute,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_string_key(index.partition_key),
                sort_key=_string_key(index.sort_key),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return table
