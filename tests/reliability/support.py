"""Worlds, hostile ONNX models and read-backs shared by the reliability tests."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from moto import mock_aws
from onnx import TensorProto, helper, numpy_helper

from infra.local.embedded_aws import aws_environment
from infra.local.gateway import GatewayResponse
from infra.local.moto_fidelity import make_dynamodb_writes_atomic
from infra.local.resources import create_all
from policyhub.adapters import aws
from policyhub.api import container
from policyhub.domain.access import Role, Tier
from policyhub.ml.onnx_models import IR_VERSION, OPSET, random_linear_policy
from policyhub.settings import settings
from tests.reliability import tally
from tests.support.api import Api, new_key

CTX, ITEM = 2, 3
D = CTX + ITEM + 1
AGENT = "memory_manager"


class ProbeApi(Api):
    """`Api` that counts every response into the tally (5xx are always noticed)."""

    def __init__(self, key: str | None, *, fault_injected: bool = False) -> None:
        super().__init__(key)
        self.fault_injected = fault_injected

    def get(self, path: str, **query: Any) -> GatewayResponse:
        return self._seen(super().get(path, **query))

    def post(self, path: str, body: Any = None, raw: bytes | None = None) -> GatewayResponse:
        return self._seen(super().post(path, body, raw))

    def post_json(self, method: str, path: str, body: Any) -> GatewayResponse:
        return self._seen(super().post_json(method, path, body))

    def _seen(self, r: GatewayResponse) -> GatewayResponse:
        tally.observe(r.status, fault_injected=self.fault_injected)
        return r


@contextmanager
def embedded_aws_env() -> Iterator[None]:
    """moto's mock_aws with our resources, for fixtures wider than one test."""
    saved = dict(os.environ)
    for k, v in aws_environment("unused").items():
        if k != "AWS_ENDPOINT_URL":
            os.environ[k] = v
    os.environ.pop("AWS_ENDPOINT_URL", None)
    make_dynamodb_writes_atomic()
    try:
        with mock_aws():
            aws.reset_clients()
            container.reset()
            create_all()
            yield
            container.reset()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        aws.reset_clients()


def artifact_b64(seed: int) -> str:
    return base64.b64encode(random_linear_policy(D, seed=seed)).decode()


def register(api: Api, seed: int, artifact: bytes | None = None) -> str:
    art = base64.b64encode(artifact).decode() if artifact is not None else artifact_b64(seed)
    r = api.post(
        "/policies",
        {"artifact_base64": art, "feature_schema": {"context_dim": CTX, "item_dim": ITEM}},
    )
    assert r.status == 201, r.body
    version: str = r.json()["version"]
    return version


def promote(api: Api, version: str) -> GatewayResponse:
    return api.post("/policies/promote", {"version": version, "strategy": "immediate"})


def rank_body(n: int = 5, value: float = 0.5, **extra: Any) -> dict[str, Any]:
    return {
        "context": {"features": [value] * CTX},
        "candidates": [
            {
                "id": f"doc-{i}",
                "retrieval_score": 1 - i / (2 * n),
                "features": [value + i / 10] * ITEM,
                "source": f"s{i % 2}",
            }
            for i in range(n)
        ],
        **extra,
    }


@dataclass
class World:
    """Tenant `acme` with one key of each kind and a policy history; tenant `globex` beside it."""

    keys: dict[str, str | None]
    admin: ProbeApi
    versions: list[str]
    decision_id: str
    acme_markers: set[str] = field(default_factory=set)
    """Strings that only acme's data contains (sha256s, key ids, decision uuids)."""


UNKNOWN_KEY = "ph_live_0123456789abcdef_" + "A" * 43


def build_world() -> World:
    admin_key = new_key("acme", Tier.PRO, Role.ADMIN)
    revoked_key = new_key("acme", Tier.PRO, Role.ADMIN)
    container.keys().revoke(revoked_key.split("_")[2])
    keys: dict[str, str | None] = {
        "no key": None,
        "malformed": "not-a-key",
        "unknown": UNKNOWN_KEY,
        "wrong secret": admin_key[:-4] + ("AAAA" if not admin_key.endswith("AAAA") else "BBBB"),
        "revoked": revoked_key,
        "free member": new_key("acme", Tier.FREE, Role.MEMBER),
        "pro member": new_key("acme", Tier.PRO, Role.MEMBER),
        "other tenant admin": new_key("globex", Tier.PRO, Role.ADMIN),
        "pro admin": admin_key,
    }
    admin = ProbeApi(admin_key)
    versions = [register(admin, seed) for seed in range(4)]
    for v in versions[:2]:
        assert promote(admin, v).status == 200
    decision = admin.post("/rank", rank_body()).json()["decision_id"]
    markers = {decision.split(".")[0]}
    for v in versions:
        markers.add(admin.get(f"/policies/{v}").json()["artifact"]["sha256"])
    for k in container.keys().list("acme"):
        markers.add(k.key_id)
    return World(keys, admin, versions, decision, markers)


def scan_table() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": settings().table_name}
    while True:
        out = aws.dynamodb().scan(**kwargs)
        items.extend(out.get("Items", []))
        if "LastEvaluatedKey" not in out:
            return items
        kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def table_snapshot() -> str:
    """The whole registry table as one canonical string (idempotency records left out)."""
    rows = [i for i in scan_table() if not i["pk"]["S"].startswith("IDEMPOTENCY#")]
    return json.dumps(sorted(rows, key=lambda i: (i["pk"]["S"], i["sk"]["S"])), sort_keys=True)


def bucket_objects(bucket: str, prefix: str = "") -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for page in aws.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = aws.s3().get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return found


# ---- ONNX models that pass registration but fail when serving ------------------------------
def _model(nodes: list[Any], inits: list[tuple[str, Any]]) -> bytes:
    graph = helper.make_graph(
        nodes,
        "hostile",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", D])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 1])],
        initializer=[numpy_helper.from_array(np.asarray(a), name=n) for n, a in inits],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    return bytes(model.SerializeToString())


def nan_on_large_inputs_policy() -> bytes:
    """`scores = log(10 - |x| @ w)`: finite on the registration probe (|x| ~ N(0, 1)), NaN
    once a feature is large — a model that fails only on real traffic."""
    w = np.zeros((D, 1), dtype=np.float32)
    w[0, 0] = 1.0
    return _model(
        [
            helper.make_node("Abs", ["features"], ["abs"]),
            helper.make_node("MatMul", ["abs", "w"], ["lin"]),
            helper.make_node("Sub", ["ten", "lin"], ["room"]),
            helper.make_node("Log", ["room"], ["scores"]),
        ],
        [("w", w), ("ten", np.asarray([10.0], dtype=np.float32))],
    )


def first_eight_rows_policy() -> bytes:
    """Scores only the first 8 candidates: right shape on the probe batches (1 and 7 rows),
    the wrong shape for 10 candidates."""
    w = np.ones((D, 1), dtype=np.float32)
    return _model(
        [
            helper.make_node("Slice", ["features", "start", "end", "axis"], ["head"]),
            helper.make_node("MatMul", ["head", "w"], ["scores"]),
        ],
        [
            ("w", w),
            ("start", np.asarray([0], dtype=np.int64)),
            ("end", np.asarray([8], dtype=np.int64)),
            ("axis", np.asarray([0], dtype=np.int64)),
        ],
    )
