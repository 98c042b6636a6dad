from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import local_stack  # noqa: F401 - the shared HTTP stack fixture
from tests.reliability import tally
from tests.reliability.support import World, build_world, embedded_aws_env


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """One embedded AWS and the acme/globex world for a whole module (tests must not rely on
    each other's writes, only on what `build_world` made)."""
    with embedded_aws_env():
        yield build_world()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        tally.count("scenarios")
