"""The interaction logs land as Parquet: Firehose converts each batch with the Glue table whose
columns are the records' one schema (`interaction_columns.COLUMNS`)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.stack.logs import PARTITION_KEYS, PREFIX
from policyhub.adapters.interaction_logs import PREFIX as LOG_PREFIX
from policyhub.adapters.interaction_logs import UNSPLIT
from policyhub.domain.interaction_columns import COLUMNS, hive

from .conftest import Synthesized, render, statements_of_role

pytestmark = pytest.mark.xdist_group("infra")

ACCOUNT_REGION = "us-east-1:123456789012"


def _one(s: Synthesized, cfn_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = s.resources(cfn_type).items()
    return logical_id, resource["Properties"]


def _destination(s: Synthesized) -> dict[str, Any]:
    _, stream = _one(s, "AWS::KinesisFirehose::DeliveryStream")
    destination: dict[str, Any] = stream["ExtendedS3DestinationConfiguration"]
    return destination


def _bucket_ref(s: Synthesized) -> str:
    return str(_destination(s)["BucketARN"]["Fn::GetAtt"][0])


def test_glue_columns_are_the_record_columns_in_their_hive_types(
    synthesized: Synthesized,
) -> None:
    _, table = _one(synthesized, "AWS::Glue::Table")
    columns = table["TableInput"]["StorageDescriptor"]["Columns"]
    assert columns == [{"Name": name, "Type": hive(t)} for name, t in COLUMNS.items()]


def test_glue_table_is_parquet_partitioned_like_the_prefix_under_interactions(
    synthesized: Synthesized,
) -> None:
    _, database = _one(synthesized, "AWS::Glue::Database")
    _, table = _one(synthesized, "AWS::Glue::Table")
    table_input = table["TableInput"]
    assert table["DatabaseName"] == database["DatabaseInput"]["Name"]
    # The `key=` parts of the Firehose prefix, in order, are the partition columns.
    assert re.findall(r"(\w+)=", PREFIX) == list(PARTITION_KEYS)
    assert table_input["PartitionKeys"] == [
        {"Name": key, "Type": "string"} for key in PARTITION_KEYS
    ]
    storage = table_input["StorageDescriptor"]
    bucket = _bucket_ref(synthesized)
    assert render(storage["Location"]) == f"s3://{bucket}/{LOG_PREFIX}/"
    assert storage["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert storage["InputFormat"].endswith("MapredParquetInputFormat")
    assert storage["OutputFormat"].endswith("MapredParquetOutputFormat")
    template = render(table_input["Parameters"]["storage.location.template"])
    assert template == (
        f"s3://{bucket}/{LOG_PREFIX}/tenant=${{tenant}}/agent=${{agent}}/date=${{date}}"
        "/hour=${hour}/split=${split}/"
    )
    # Athena projects every partition key (no crawler); hours as the reader names them, 00-23,
    # and the two sides of the held-out split
    params = table_input["Parameters"]
    assert all(f"projection.{key}.type" in params for key in PARTITION_KEYS)
    assert (params["projection.hour.range"], params["projection.hour.digits"]) == ("0,23", "2")
    assert (params["projection.split.type"], params["projection.split.values"]) == (
        "enum", "holdout,train,unsplit")  # fmt: skip
    assert not set(COLUMNS) & set(PARTITION_KEYS)  # Athena refuses a column named as a key


def test_firehose_partitions_each_record_by_its_at_and_its_decisions_split(
    synthesized: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The jq query's keys are the prefix's placeholders, and on the line `FirehoseSink` puts
    they give the date, hour and split `interaction_logs.partition()` writes locally."""
    from datetime import UTC, datetime

    from infra.stack.logs import PARTITION_QUERY
    from policyhub.adapters import aws
    from policyhub.adapters.interaction_logs import FirehoseSink, partition
    from policyhub.domain.holdout import split_of
    from policyhub.domain.interaction_records import decision_record

    assert re.findall(r"partitionKeyFromQuery:(\w+)", PREFIX) == re.findall(
        r"(\w+): \(?\.", PARTITION_QUERY
    )
    put: list[bytes] = []

    class Firehose:
        def put_record(self, DeliveryStreamName: str, Record: dict[str, bytes]) -> None:  # noqa: N803
            put.append(Record["Data"])

    monkeypatch.setattr(aws, "client", lambda name: Firehose())
    at = datetime(2026, 12, 1, 7, 5, 9, 123, tzinfo=UTC)
    sink = FirehoseSink("stream", "bucket")
    for n in range(40):
        sink.put(decision_record(
            tenant_id="acme", agent_type="memory_manager", decision_id=f"d{n}", at=at,
            policy_version=None, variant="retrieval", context=[], candidates=[], ranking=[],
            chosen_id="", propensity=1.0, epsilon=0.0, temperature=1.0, latency_ms=1.0,
        ))  # fmt: skip
    lines = [json.loads(data) for data in put]
    slices = dict(re.findall(r"(\w+): \.at\[(\d+:\d+)\]", PARTITION_QUERY))
    fields = dict(re.findall(r"(\w+): \(?\.(\w+)\b(?!\[)", PARTITION_QUERY))
    assert fields["split"] == "split"
    assert f'(.split // "{UNSPLIT}")' in PARTITION_QUERY  # a line without it is still kept
    for line in lines:
        date, hour = (line["at"][slice(*map(int, slices[k].split(":")))] for k in ("date", "hour"))
        expected = partition("acme", "memory_manager", at, split_of(line["decision_id"]))
        assert expected.endswith(f"/date={date}/hour={hour}/split={line[fields['split']]}/")
    assert {line["split"] for line in lines} == {"holdout", "train"}


def test_firehose_converts_json_lines_to_parquet_with_that_table(
    synthesized: Synthesized,
) -> None:
    destination = _destination(synthesized)
    _, table = _one(synthesized, "AWS::Glue::Table")
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert conversion["InputFormatConfiguration"]["Deserializer"] == {"OpenXJsonSerDe": {}}
    parquet = conversion["OutputFormatConfiguration"]["Serializer"]["ParquetSerDe"]
    assert parquet["Compression"] == "GZIP"
    schema = conversion["SchemaConfiguration"]
    assert (schema["DatabaseName"], schema["TableName"]) == (
        table["DatabaseName"],
        table["TableInput"]["Name"],
    )
    assert schema["VersionId"] == "LATEST"
    assert schema["RoleARN"] == {"Fn::GetAtt": [destination["RoleARN"]["Fn::GetAtt"][0], "Arn"]}
    # Parquet compresses its pages; S3-level compression is off (Firehose requires it).
    assert destination["CompressionFormat"] == "UNCOMPRESSED"
    assert destination["FileExtension"] == ".parquet"
    assert destination["BufferingHints"]["SizeInMBs"] >= 64
    # Records that fail partitioning or conversion keep landing under the error prefix.
    assert "!{firehose:error-output-type}" in destination["ErrorOutputPrefix"]


def test_firehose_role_reads_only_that_table_from_glue(synthesized: Synthesized) -> None:
    destination = _destination(synthesized)
    role = destination["RoleARN"]["Fn::GetAtt"][0]
    _, table = _one(synthesized, "AWS::Glue::Table")
    db, name = table["DatabaseName"], table["TableInput"]["Name"]
    glue = [
        st
        for st in statements_of_role(synthesized, role)
        if any(a.startswith("glue:") for a in _actions(st))
    ]
    assert len(glue) == 1
    (statement,) = glue
    assert statement["Effect"] == "Allow"
    assert set(_actions(statement)) == {
        "glue:GetTable",
        "glue:GetTableVersion",
        "glue:GetTableVersions",
    }
    assert sorted(render(r) for r in statement["Resource"]) == sorted(
        f"arn:aws:glue:{ACCOUNT_REGION}:{resource}"
        for resource in ("catalog", f"database/{db}", f"table/{db}/{name}")
    )
    # Firehose checks the table when the stream is created.
    stream_id, _ = _one(synthesized, "AWS::KinesisFirehose::DeliveryStream")
    table_id, _ = _one(synthesized, "AWS::Glue::Table")
    assert table_id in synthesized.template["Resources"][stream_id]["DependsOn"]


def test_no_other_role_touches_glue(synthesized: Synthesized) -> None:
    role = _destination(synthesized)["RoleARN"]["Fn::GetAtt"][0]
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            continue
        for st in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert not any(a.startswith("glue:") for a in _actions(st))


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)
