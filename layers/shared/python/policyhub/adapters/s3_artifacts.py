"""ONNX artifacts in S3, content-addressed by sha256 and verified on every read."""

from __future__ import annotations

import hashlib

from botocore.exceptions import ClientError

from policyhub.adapters import aws
from policyhub.domain.errors import PolicyHubError


def artifact_key(tenant_id: str, agent_type: str, sha256: str) -> str:
    return f"tenants/{tenant_id}/agents/{agent_type}/artifacts/{sha256}.onnx"


def verify_artifact(data: bytes, sha256: str, max_bytes: int) -> bytes:
    if len(data) > max_bytes:
        raise PolicyHubError(
            "invalid_artifact", f"artifact is {len(data)} bytes, above the cap of {max_bytes}"
        )
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise PolicyHubError(
            "invalid_artifact", f"artifact sha256 {actual} does not match the registry's {sha256}"
        )
    return data


class S3ArtifactStore:
    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    def put(self, tenant_id: str, agent_type: str, sha256: str, data: bytes) -> None:
        aws.s3().put_object(
            Bucket=self._bucket,
            Key=artifact_key(tenant_id, agent_type, sha256),
            Body=data,
            ContentType="application/octet-stream",
            Metadata={"sha256": sha256},
        )

    def get(self, tenant_id: str, agent_type: str, sha256: str, max_bytes: int) -> bytes:
        key = artifact_key(tenant_id, agent_type, sha256)
        try:
            head = aws.s3().head_object(Bucket=self._bucket, Key=key)
            if head["ContentLength"] > max_bytes:
                raise PolicyHubError(
                    "invalid_artifact", f"artifact {sha256} is above the cap of {max_bytes} bytes"
                )
            data = aws.s3().get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                raise PolicyHubError("invalid_artifact", f"artifact {sha256} is missing") from exc
            raise
        return verify_artifact(data, sha256, max_bytes)
