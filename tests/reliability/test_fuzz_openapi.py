"""Schemathesis against /v1/openapi.json of a real local stack over HTTP, every operation, with
an admin key: no 5xx and every response (status, content type, body) valid against the document.

Positive and negative cases per operation, bounded (4 per
operation and mode; the soak run uses more). Operations come from the served document, so new
routes are fuzzed without touching this file.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import LocalStack
from tests.reliability import tally

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("reliability-fuzz")]
EXAMPLES = tally.sized(4, 100)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _fuzz(op: Any, base: str, key: str, mode: GenerationMode, failures: list[str]) -> int:
    session = requests.Session()
    cases = 0

    @given(case=op.as_strategy(generation_mode=mode, headers={"Authorization": f"Bearer {key}"}))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        nonlocal cases
        cases += 1
        response = case.call(base_url=base, session=session, timeout=30)
        tally.observe(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:  # a FailureGroup of every failed check, with a curl repro
            failures.append(f"{op.label} [{mode.value}] {response.status_code}: {exc}"[:1500])

    with contextlib.suppress(Unsatisfiable):  # e.g. no negative case without parameters
        run()
    return cases


def test_every_operation_answers_per_the_document_and_never_5xx(local_stack: LocalStack) -> None:
    base = local_stack.base.removesuffix("/v1")
    schema = schemathesis.openapi.from_url(f"{local_stack.base}/openapi.json")
    failures: list[str] = []
    total = 0
    operations = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 10
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            total += _fuzz(op, base, local_stack.admin_key, mode, failures)
    tally.count("fuzz_cases", total)
    assert total >= len(operations) * 2
    assert not failures, "\n\n".join(failures[:10])
