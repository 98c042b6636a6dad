"""AWS clients, created lazily and kept for the life of the container.

botocore's own sessions, not boto3's: boto3 adds nothing a client needs here and its import
(s3transfer, the resource factory) took ~150 ms of every cold start (decision 096).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=10
)


@cache
def _client(service: str) -> Any:
    # One session per client: creating clients from a shared session is not thread-safe.
    return botocore.session.Session().create_client(service, config=_CONFIG)


def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb")
    return client


def s3() -> S3Client:
    client: S3Client = _client("s3")
    return client


def client(service: str) -> Any:
    return _client(service)


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints between cases)."""
    _client.cache_clear()
