"""Training jobs in the registry table (docs/decisions/061-training-job-items.md).

| item | pk | sk |
|---|---|---|
| job | `T#<tenant>#A#<agent>` | `JOB#<job_id>` (job ids sort by creation time) |
| active-job guard | `T#<tenant>#A#<agent>` | `TRAINING#ACTIVE` (`job_id`, lease in `doc`) |
| training cursor | `T#<tenant>#A#<agent>` | `TRAINING#CURSOR` (`window_end` of the last success) |
| job id index | `T#<tenant>#JOB#<job_id>` | `JOB` (`agent_type`: find a job by id alone) |

Every change is one TransactWriteItems with conditions on the job's status and the guard's
holder, so two starts for one agent cannot both succeed and a job finishes at most once.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from policyhub.adapters import aws
from policyhub.adapters.dynamo_keys import agent_pk
from policyhub.adapters.dynamo_store import DynamoStore, transact
from policyhub.domain.audit import AuditEvent
from policyhub.domain.timestamps import utc_iso
from policyhub.domain.training import ActiveJob, JobStatus, TrainingJob
from policyhub.ports import Page, PageKey

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef

JOB_PREFIX = "JOB#"
ACTIVE_JOB_SK = "TRAINING#ACTIVE"
CURSOR_SK = "TRAINING#CURSOR"
JOB_INDEX_SK = "JOB"
_QUEUED = {":queued": {"S": JobStatus.QUEUED.value}}
_ACTIVE = {**_QUEUED, ":running": {"S": JobStatus.RUNNING.value}}


def job_sk(job_id: str) -> str:
    return f"{JOB_PREFIX}{job_id}"


def job_index_pk(tenant_id: str, job_id: str) -> str:
    return f"T#{tenant_id}#JOB#{job_id}"


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


class DynamoJobStore:
    def __init__(self, table: str) -> None:
        self._table = table

    # ---- reads ---------------------------------------------------------------------------
    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        out = aws.dynamodb().get_item(
            TableName=self._table, Key={"pk": _s(pk), "sk": _s(sk)}, ConsistentRead=True
        )
        return out.get("Item")

    def get_job(self, tenant_id: str, agent_type: str, job_id: str) -> TrainingJob | None:
        item = self._get(agent_pk(tenant_id, agent_type), job_sk(job_id))
        return None if item is None else TrainingJob.model_validate_json(item["doc"]["S"])

    def find_job(self, tenant_id: str, job_id: str) -> TrainingJob | None:
        index = self._get(job_index_pk(tenant_id, job_id), JOB_INDEX_SK)
        if index is None:
            return None
        return self.get_job(tenant_id, index["agent_type"]["S"], job_id)

    def list_jobs(
        self, tenant_id: str, agent_type: str, limit: int, start: PageKey | None
    ) -> Page[TrainingJob]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": _s(agent_pk(tenant_id, agent_type)),
                ":prefix": _s(JOB_PREFIX),
            },
            "ScanIndexForward": False,
            "Limit": limit + 1,
            "ConsistentRead": True,
        }
        if start:
            kwargs["ExclusiveStartKey"] = {k: _s(v) for k, v in start.items()}
        items = aws.dynamodb().query(**kwargs).get("Items", [])
        page = items[:limit]
        jobs = [TrainingJob.model_validate_json(i["doc"]["S"]) for i in page]
        more = len(items) > limit and bool(page)
        last = page[-1] if more else None
        return Page(jobs, {"pk": last["pk"]["S"], "sk": last["sk"]["S"]} if last else None)

    def get_active(self, tenant_id: str, agent_type: str) -> ActiveJob | None:
        item = self._get(agent_pk(tenant_id, agent_type), ACTIVE_JOB_SK)
        return None if item is None else ActiveJob.model_validate_json(item["doc"]["S"])

    def get_cursor(self, tenant_id: str, agent_type: str) -> datetime | None:
        item = self._get(agent_pk(tenant_id, agent_type), CURSOR_SK)
        if item is None:
            return None
        return datetime.fromisoformat(item["window_end"]["S"].replace("Z", "+00:00"))

    # ---- writes --------------------------------------------------------------------------
    def _job_put(
        self, tenant_id: str, job: TrainingJob, condition: str, values: dict[str, Any]
    ) -> TransactWriteItemTypeDef:
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                "pk": _s(agent_pk(tenant_id, job.agent_type)),
                "sk": _s(job_sk(job.job_id)),
                "doc": _s(job.model_dump_json()),
                "status": _s(job.status.value),
            },
            "ConditionExpression": condition,
        }
        if values:
            put["ExpressionAttributeNames"] = {"#st": "status"}
            put["ExpressionAttributeValues"] = values
        return {"Put": put}  # type: ignore[typeddict-item]

    def _guard_put(
        self, tenant_id: str, agent_type: str, guard: ActiveJob, holder: str | None
    ) -> TransactWriteItemTypeDef:
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                "pk": _s(agent_pk(tenant_id, agent_type)),
                "sk": _s(ACTIVE_JOB_SK),
                "doc": _s(guard.model_dump_json()),
                "job_id": _s(guard.job_id),
            },
        }
        if holder is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "job_id = :holder"
            put["ExpressionAttributeValues"] = {":holder": _s(holder)}
        return {"Put": put}  # type: ignore[typeddict-item]

    def _audit_put(self, tenant_id: str, audit: AuditEvent) -> TransactWriteItemTypeDef:
        return {
            "Put": {
                "TableName": self._table,
                "Item": DynamoStore._audit_item(tenant_id, audit),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _commit(self, ops: list[TransactWriteItemTypeDef], what: str) -> None:
        transact(ops, what)

    def create(
        self,
        tenant_id: str,
        job: TrainingJob,
        guard: ActiveJob,
        audit: AuditEvent,
        replaces: TrainingJob | None,
    ) -> None:
        ops: list[TransactWriteItemTypeDef] = [
            self._guard_put(
                tenant_id, job.agent_type, guard, replaces.job_id if replaces else None
            ),
            self._job_put(tenant_id, job, "attribute_not_exists(pk)", {}),
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        "pk": _s(job_index_pk(tenant_id, job.job_id)),
                        "sk": _s(JOB_INDEX_SK),
                        "agent_type": _s(job.agent_type),
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            self._audit_put(tenant_id, audit),
        ]
        if replaces is not None:
            ops.append(
                self._job_put(
                    tenant_id,
                    replaces,
                    "#st IN (:queued, :running)",
                    _ACTIVE,
                )
            )
        self._commit(ops, f"training of agent {job.agent_type!r}")

    def mark_running(self, tenant_id: str, job: TrainingJob, guard: ActiveJob) -> None:
        self._commit(
            [
                self._job_put(tenant_id, job, "#st = :queued", _QUEUED),
                self._guard_put(tenant_id, job.agent_type, guard, job.job_id),
            ],
            f"training job {job.job_id}",
        )

    def finish(
        self,
        tenant_id: str,
        job: TrainingJob,
        expected: JobStatus,
        audit: AuditEvent,
        cursor: datetime | None,
    ) -> None:
        pk = _s(agent_pk(tenant_id, job.agent_type))
        ops: list[TransactWriteItemTypeDef] = [
            self._job_put(tenant_id, job, "#st = :expected", {":expected": _s(expected.value)}),
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": {"pk": pk, "sk": _s(ACTIVE_JOB_SK)},
                    "ConditionExpression": "job_id = :holder",
                    "ExpressionAttributeValues": {":holder": _s(job.job_id)},
                }
            },
            self._audit_put(tenant_id, audit),
        ]
        if cursor is not None:
            ops.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": pk,
                            "sk": _s(CURSOR_SK),
                            "window_end": _s(utc_iso(cursor)),
                            "job_id": _s(job.job_id),
                        },
                    }
                }
            )
        self._commit(ops, f"training job {job.job_id}")
