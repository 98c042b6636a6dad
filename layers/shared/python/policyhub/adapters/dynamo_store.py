"""PolicyStore and KeyStore on one DynamoDB table.

Each record keeps its entity as a JSON document (`doc`) next to the few attributes that
conditions, filters and indexes need (`status`, `revision`, `agent_type`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

from policyhub.adapters import aws
from policyhub.adapters.dynamo_keys import (
    CONSTRAINTS_SK,
    DEPLOYMENT_SK,
    KEY_SK,
    ROLLOUT_PREFIX,
    VERSION_PREFIX,
    agent_pk,
    audit_pk,
    audit_sk,
    experiment_sk,
    key_pk,
    rollout_sk,
    tenant_keys_gsi,
    version_sk,
)
from policyhub.domain.audit import AuditEvent
from policyhub.domain.constraints import Constraints
from policyhub.domain.deployment import Deployment
from policyhub.domain.errors import PolicyHubError
from policyhub.domain.keys import ApiKey
from policyhub.domain.routing import ServingView
from policyhub.domain.transition import Transition
from policyhub.domain.versions import PolicyStatus, PolicyVersion
from policyhub.ports import Page, PageKey

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        TransactWriteItemTypeDef,
    )

    from policyhub.domain.experiment import Experiment
    from policyhub.domain.rollout import Rollout

M = TypeVar("M", bound=BaseModel)
Item = dict[str, "AttributeValueTypeDef"]
_CONFLICT_CODES = {
    "TransactionCanceledException",
    "ConditionalCheckFailedException",
    "TransactionConflictException",
}


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def _doc(model: BaseModel) -> AttributeValueTypeDef:
    return {"S": model.model_dump_json()}


def _load(model: type[M], item: dict[str, Any]) -> M:
    return model.model_validate_json(item["doc"]["S"])


def transact(ops: Sequence[TransactWriteItemTypeDef], what: str) -> None:
    """All-or-nothing write; a failed condition or a conflicting transaction is a 409.

    A single conditional Put is already atomic and goes out as PutItem (half the write
    capacity of a one-item transaction; the rollout controller's hold is one every look)."""
    try:
        if len(ops) == 1 and set(ops[0]) == {"Put"}:
            aws.dynamodb().put_item(**ops[0]["Put"])
            return
        aws.dynamodb().transact_write_items(TransactItems=ops)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _CONFLICT_CODES:
            raise concurrent_change(what) from exc
        raise


def concurrent_change(what: str) -> PolicyHubError:
    return PolicyHubError(
        "concurrent_change", f"{what} changed concurrently; read the current state and retry"
    )


class DynamoStore:
    def __init__(self, table: str) -> None:
        self._table = table

    # ---- reads -------------------------------------------------------------------------
    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        out = aws.dynamodb().get_item(
            TableName=self._table, Key={"pk": _s(pk), "sk": _s(sk)}, ConsistentRead=True
        )
        return out.get("Item")

    def get_deployment(self, tenant_id: str, agent_type: str) -> Deployment | None:
        item = self._get(agent_pk(tenant_id, agent_type), DEPLOYMENT_SK)
        return None if item is None else _load(Deployment, item)

    def get_version(self, tenant_id: str, agent_type: str, version: str) -> PolicyVersion | None:
        item = self._get(agent_pk(tenant_id, agent_type), version_sk(version))
        return None if item is None else _load(PolicyVersion, item)

    def _page(
        self,
        *,
        key_condition: str,
        values: dict[str, AttributeValueTypeDef],
        filter_expr: str | None,
        limit: int,
        start: PageKey | None,
        load: Callable[[dict[str, Any]], M],
        names: dict[str, str] | None = None,
    ) -> Page[M]:
        """Newest-first page of exactly `limit` matches (filters applied), and where it stopped."""
        found: list[tuple[M, PageKey]] = []
        exclusive: dict[str, Any] | None = {k: _s(v) for k, v in start.items()} if start else None
        while len(found) <= limit:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": key_condition,
                "ExpressionAttributeValues": values,
                "ScanIndexForward": False,
                "Limit": limit + 1,
                "ConsistentRead": True,  # a version just registered is in the next listing
            }
            if filter_expr:
                kwargs["FilterExpression"] = filter_expr
            if names:
                kwargs["ExpressionAttributeNames"] = names
            if exclusive:
                kwargs["ExclusiveStartKey"] = exclusive
            out = aws.dynamodb().query(**kwargs)
            for item in out.get("Items", []):
                found.append((load(item), {"pk": item["pk"]["S"], "sk": item["sk"]["S"]}))
            exclusive = out.get("LastEvaluatedKey")
            if not exclusive:
                break
        has_more = len(found) > limit
        items = found[:limit]
        return Page([m for m, _ in items], items[-1][1] if has_more and items else None)

    def list_versions(
        self,
        tenant_id: str,
        agent_type: str,
        status: PolicyStatus | None,
        limit: int,
        start: PageKey | None,
    ) -> Page[PolicyVersion]:
        values: dict[str, AttributeValueTypeDef] = {
            ":pk": _s(agent_pk(tenant_id, agent_type)),
            ":prefix": _s(VERSION_PREFIX),
        }
        if status is not None:
            values[":status"] = _s(status.value)
        return self._page(
            key_condition="pk = :pk AND begins_with(sk, :prefix)",
            values=values,
            filter_expr="#st = :status" if status else None,
            names={"#st": "status"} if status else None,
            limit=limit,
            start=start,
            load=lambda i: _load(PolicyVersion, i),
        )

    def list_audit(
        self, tenant_id: str, agent_type: str, limit: int, start: PageKey | None
    ) -> Page[AuditEvent]:
        # Tenant-wide events (API keys) have no agent and belong in every agent's trail.
        return self._page(
            key_condition="pk = :pk",
            values={":pk": _s(audit_pk(tenant_id)), ":agent": _s(agent_type), ":none": _s("-")},
            filter_expr="agent_type IN (:agent, :none)",
            limit=limit,
            start=start,
            load=lambda i: _load(AuditEvent, i),
        )

    # ---- the rank path's view, in one round trip ---------------------------------------
    def get_serving_view(self, tenant_id: str, agent_type: str) -> ServingView:
        pk = _s(agent_pk(tenant_id, agent_type))
        out = aws.dynamodb().batch_get_item(
            RequestItems={
                self._table: {
                    "Keys": [
                        {"pk": pk, "sk": _s(DEPLOYMENT_SK)},
                        {"pk": pk, "sk": _s(CONSTRAINTS_SK)},
                    ],
                    "ConsistentRead": True,
                }
            }
        )
        items = {i["sk"]["S"]: i for i in out.get("Responses", {}).get(self._table, [])}
        view = ServingView()
        if DEPLOYMENT_SK in items:
            d = _load(Deployment, items[DEPLOYMENT_SK])
            view = ServingView(
                production=d.production, rollout=d.rollout_route, experiment=d.experiment_route
            )
        if CONSTRAINTS_SK in items:
            view.constraints = _load(Constraints, items[CONSTRAINTS_SK])
        return view

    def get_constraints(self, tenant_id: str, agent_type: str) -> Constraints:
        return self.get_constraints_revision(tenant_id, agent_type)[0]

    def get_constraints_revision(self, tenant_id: str, agent_type: str) -> tuple[Constraints, int]:
        item = self._get(agent_pk(tenant_id, agent_type), CONSTRAINTS_SK)
        if item is None:
            return Constraints(), 0
        return _load(Constraints, item), int(item.get("revision", {"N": "1"})["N"])

    def put_constraints(
        self,
        tenant_id: str,
        agent_type: str,
        constraints: Constraints,
        audit: AuditEvent,
        expected_revision: int,
    ) -> None:
        put = self._guarded_put(
            {
                "pk": _s(agent_pk(tenant_id, agent_type)),
                "sk": _s(CONSTRAINTS_SK),
                "doc": _doc(constraints),
                "revision": {"N": str(expected_revision + 1)},
            },
            expected_revision or None,
        )
        transact(
            [
                {"Put": put},
                {"Put": {"TableName": self._table, "Item": self._audit_item(tenant_id, audit)}},
            ],
            f"constraints of {agent_type!r}",
        )

    # ---- the one write path for registry state ---------------------------------------
    def commit(self, transition: Transition) -> None:
        t = transition
        pk = agent_pk(t.tenant_id, t.agent_type)
        ops: list[TransactWriteItemTypeDef] = []
        if t.deployment is not None:
            ops.append(
                {
                    "Put": self._guarded_put(
                        {
                            "pk": _s(pk),
                            "sk": _s(DEPLOYMENT_SK),
                            "doc": _doc(t.deployment),
                            "revision": {"N": str(t.deployment.revision)},
                        },
                        t.expected_revision or None,
                    )
                }
            )
        for x in t.experiments:
            ops.append(
                {
                    "Put": self._guarded_put(
                        {
                            "pk": _s(pk),
                            "sk": _s(experiment_sk(x.experiment.experiment_id)),
                            "doc": _doc(x.experiment),
                            "revision": {"N": str(x.experiment.revision)},
                        },
                        x.expected_revision,
                    )
                }
            )
        for w in t.rollouts:
            ops.append(
                {
                    "Put": self._guarded_put(
                        {
                            "pk": _s(pk),
                            "sk": _s(rollout_sk(w.rollout.rollout_id)),
                            "doc": _s(json.dumps(w.rollout.to_dict())),
                            "revision": {"N": str(w.rollout.revision)},
                        },
                        w.expected_revision,
                    )
                }
            )
        for v in t.new_versions:
            ops.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": self._version_item(pk, v),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        for u in t.version_updates:
            ops.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": self._version_item(pk, u.updated),
                        "ConditionExpression": "#st = :expected",
                        "ExpressionAttributeNames": {"#st": "status"},
                        "ExpressionAttributeValues": {":expected": _s(u.expected.value)},
                    }
                }
            )
        for e in t.audit:
            ops.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": self._audit_item(t.tenant_id, e),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        transact(ops, f"agent {t.agent_type!r}")

    def _guarded_put(self, item: Item, expected_revision: int | None) -> Any:
        """A Put that only succeeds over `expected_revision` (or where nothing exists)."""
        put: dict[str, Any] = {"TableName": self._table, "Item": item}
        if expected_revision is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "revision = :rev"
            put["ExpressionAttributeValues"] = {":rev": {"N": str(expected_revision)}}
        return put

    def get_experiment(
        self, tenant_id: str, agent_type: str, experiment_id: str
    ) -> Experiment | None:
        item = self._get(agent_pk(tenant_id, agent_type), experiment_sk(experiment_id))
        from policyhub.domain.experiment import Experiment

        return None if item is None else _load(Experiment, item)

    # ---- rollouts ------------------------------------------------------------------------
    def get_rollout(self, tenant_id: str, agent_type: str, rollout_id: str) -> Rollout | None:
        item = self._get(agent_pk(tenant_id, agent_type), rollout_sk(rollout_id))
        from policyhub.domain.rollout import Rollout

        return None if item is None else Rollout.from_dict(json.loads(item["doc"]["S"]))

    def list_rollouts(
        self, tenant_id: str, agent_type: str, limit: int, start: PageKey | None
    ) -> Page[Rollout]:
        from policyhub.domain.rollout import Rollout

        return self._page(
            key_condition="pk = :pk AND begins_with(sk, :prefix)",
            values={":pk": _s(agent_pk(tenant_id, agent_type)), ":prefix": _s(ROLLOUT_PREFIX)},
            filter_expr=None,
            limit=limit,
            start=start,
            load=lambda i: Rollout.from_dict(json.loads(i["doc"]["S"])),
        )

    @staticmethod
    def _version_item(pk: str, v: PolicyVersion) -> Item:
        return {
            "pk": _s(pk),
            "sk": _s(version_sk(v.version)),
            "doc": _doc(v),
            "status": _s(v.status.value),
        }

    @staticmethod
    def _audit_item(tenant_id: str, e: AuditEvent) -> Item:
        return {
            "pk": _s(audit_pk(tenant_id)),
            "sk": _s(audit_sk(e.at, e.event_id)),
            "doc": _doc(e),
            "agent_type": _s(e.agent_type or "-"),
        }

    # ---- API keys ----------------------------------------------------------------------
    def put_key(self, tenant_id: str, key: ApiKey, audit: AuditEvent) -> None:
        transact(
            [
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": _s(key_pk(key.key_id)),
                            "sk": _s(KEY_SK),
                            "doc": _doc(key),
                            "gsi1pk": _s(tenant_keys_gsi(tenant_id)),
                            "gsi1sk": _s(key.created_at.isoformat()),
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Put": {"TableName": self._table, "Item": self._audit_item(tenant_id, audit)}},
            ],
            f"API key {key.key_id}",
        )

    def get_key(self, key_id: str) -> ApiKey | None:
        item = self._get(key_pk(key_id), KEY_SK)
        return None if item is None else _load(ApiKey, item)

    def list_keys(self, tenant_id: str) -> list[ApiKey]:
        keys: list[ApiKey] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(tenant_keys_gsi(tenant_id))},
        }
        while True:
            out = aws.dynamodb().query(**kwargs)
            keys.extend(_load(ApiKey, i) for i in out.get("Items", []))
            if "LastEvaluatedKey" not in out:
                return keys
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def revoke_key(self, key_id: str, at: datetime, audit: AuditEvent) -> ApiKey:
        key = self.get_key(key_id)
        if key is None:
            raise PolicyHubError("not_found", f"no API key {key_id}")
        revoked = key.model_copy(update={"revoked_at": key.revoked_at or at})
        # Conditional on the key as read: of two revokes at once, the loser gets a 409 and
        # the first `revoked_at` stands.
        transact(
            [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"pk": _s(key_pk(key_id)), "sk": _s(KEY_SK)},
                        "UpdateExpression": "SET doc = :doc",
                        "ConditionExpression": "doc = :read",
                        "ExpressionAttributeValues": {":doc": _doc(revoked), ":read": _doc(key)},
                    }
                },
                {"Put": {"TableName": self._table, "Item": self._audit_item(key.tenant_id, audit)}},
            ],
            f"API key {key_id}",
        )
        return revoked
