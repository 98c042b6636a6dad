"""Create the tables and buckets of `policyhub.resources` on the embedded AWS (or mock_aws)."""

from __future__ import annotations

from policyhub.adapters import aws
from policyhub.resources import BUCKETS, TABLES, TableSpec


def _create_table(spec: TableSpec, name: str) -> None:
    attrs = {spec.partition_key, spec.sort_key}
    for ix in spec.indexes:
        attrs |= {ix.partition_key, ix.sort_key}
    client = aws.dynamodb()
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in sorted(attrs)],
        KeySchema=[
            {"AttributeName": spec.partition_key, "KeyType": "HASH"},
            {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": ix.name,
                "KeySchema": [
                    {"AttributeName": ix.partition_key, "KeyType": "HASH"},
                    {"AttributeName": ix.sort_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for ix in spec.indexes
        ],
    )
    client.get_waiter("table_exists").wait(TableName=name)
    if spec.ttl_attribute:
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )


def create_all(names: dict[str, str] | None = None) -> None:
    """Every table and bucket; `names` maps a spec's env var to the name to use."""
    names = names or {}
    for spec in TABLES:
        _create_table(spec, names.get(spec.env_var, spec.default_name))
    for bucket in BUCKETS:
        name = names.get(bucket.env_var, bucket.default_name)
        aws.s3().create_bucket(Bucket=name)
        aws.s3().put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
