from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import settings as hypothesis_settings
from moto import mock_aws
from moto.core.config import DefaultConfig

from infra.local.embedded_aws import aws_environment
from infra.local.moto_fidelity import make_dynamodb_writes_atomic
from infra.local.resources import create_all
from policyhub.adapters import aws
from policyhub.api import container
from policyhub.settings import EXECUTION_ENV, LAMBDA_MARKER, MODE, Mode
from tests.support.api import Api, new_key

# Hypothesis's per-example deadline is a timing assertion: on a loaded 2-core CI machine an
# example of a pure function took over its 200 ms. Speed targets live in bench/, not in tests.
hypothesis_settings.register_profile("policyhub", deadline=None)
hypothesis_settings.load_profile("policyhub")


@contextmanager
def embedded_aws_context(
    monkeypatch: pytest.MonkeyPatch, config: DefaultConfig | None = None
) -> Iterator[None]:
    """moto's mock_aws (with `config`, e.g. to execute state machines) and our resources."""
    for k, v in aws_environment("unused").items():
        if k != "AWS_ENDPOINT_URL":
            monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    make_dynamodb_writes_atomic()
    with mock_aws(config=config):
        aws.reset_clients()
        container.reset()
        create_all()
        yield
        container.reset()
    aws.reset_clients()


@pytest.fixture
def embedded_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's mock_aws with our tables and buckets, as the handlers see AWS."""
    with embedded_aws_context(monkeypatch):
        yield


@pytest.fixture(scope="module")
def embedded_aws_for_module() -> Iterator[None]:
    """The same, started once for a module whose tests keep apart by themselves (each its own
    table, e.g. the store contract): starting moto and its clients costs ~0.3 s a test."""
    with pytest.MonkeyPatch.context() as monkeypatch, embedded_aws_context(monkeypatch):
        yield


@pytest.fixture
def admin(embedded_aws: None) -> Api:
    return Api(new_key("acme"))


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    # The suite runs the service in local mode, whatever the shell says; tests of aws mode give
    # `Settings.from_env` their own environment.
    for name in (LAMBDA_MARKER, EXECUTION_ENV):
        os.environ.pop(name, None)
    os.environ[MODE.name] = Mode.LOCAL.value
