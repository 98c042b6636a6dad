"""Schemathesis against /v1/openapi.json of a real local stack over HTTP, every operation, with
the stack's admin key: its examples, coverage and fuzzing phases, as `schemathesis run` would,
through the engine in this process.

Over HTTP rather than in-process through the handlers: the local API's own parsing and dispatch
(methods no route serves, malformed requests, percent-encoded paths) and the authorizer are
part of what a client meets, and issue 14 found bugs there.

Checks: no 5xx; every status, content type and body as the document says; and data the
document allows is not refused for its shape (`positive_data_acceptance`, below, where it is
meaningful). Bounded for CI: a few examples per operation and phase, derandomized, no example
database (the soak run uses more). Operations come from the served document, so new routes
are fuzzed without touching this file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure
from schemathesis.engine import events, from_schema
from schemathesis.specs.openapi.checks import positive_data_acceptance as builtin_acceptance

from policyhub.domain.errors import ERROR_TABLE
from policyhub.domain.schema_rules import RULES_KEY
from tests.e2e.conftest import LocalStack
from tests.reliability import tally

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("reliability-fuzz")]
EXAMPLES = tally.sized(6, 100)
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "positive_data_acceptance_where_meaningful",
)
SHAPE_CODES = frozenset({"malformed_json", "bad_request", "validation_error", "payload_too_large"})
"""Refusals about a request's shape: data the document allows must never get one. Every other
4xx code is about state (no such version, a rollout is active), an opaque token the server
issued (a cursor), or content JSON Schema cannot judge (an ONNX model, features that do not fit
the serving version's schema)."""
assert ERROR_TABLE.keys() >= SHAPE_CODES


def _rule_fields(doc: dict[str, Any], schema: Any, path: str, depth: int = 0) -> Iterator[str]:
    """The error-detail fields (`body.pipeline.max_step_seconds`) of the `x-rules` a request
    body's schema declares, nested schemas included."""
    while isinstance(schema, dict) and "$ref" in schema:
        target: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    if not isinstance(schema, dict) or depth > 8:
        return
    for rule in schema.get(RULES_KEY, []):
        yield f"{path}.{rule['field']}"
    for name, sub in schema.get("properties", {}).items():
        yield from _rule_fields(doc, sub, f"{path}.{name}", depth + 1)
    for key in ("anyOf", "allOf", "oneOf"):
        for sub in schema.get(key, []):
            yield from _rule_fields(doc, sub, path, depth + 1)


def _documented_rule_fields(case: Any) -> set[str]:
    doc = case.operation.schema.raw_schema
    body = case.operation.definition.raw.get("requestBody", {})
    schema = body.get("content", {}).get("application/json", {}).get("schema")
    return set(_rule_fields(doc, schema, "body")) if schema else set()


@schemathesis.check
def positive_data_acceptance_where_meaningful(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' positive_data_acceptance, except for refusals the document announces as
    beyond JSON Schema: a 4xx whose code is not about the request's shape (SHAPE_CODES), or a
    422 whose every detail names a field of one of the body's `x-rules` (a sum, an order,
    uniqueness, one field against another)."""
    try:
        return builtin_acceptance(ctx, response, case)
    except Failure:
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            raise
        if error["code"] not in SHAPE_CODES:
            return None
        fields = {d["field"] for d in error["details"]}
        if error["code"] == "validation_error" and fields and fields <= _documented_rule_fields(
            case
        ):
            return None
        raise


def _config(key: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "headers": {"Authorization": f"Bearer {key}"},
            "workers": 1,
            "request-timeout": 30,
            "generation": {"max-examples": EXAMPLES, "deterministic": True, "mode": "all"},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "operations": [
                {
                    # Every schema-valid compare really evaluates (about a second each, up to
                    # 90 days of logs): its coverage phase sends only the invalid variants. The
                    # examples and fuzzing phases still send valid ones.
                    "include-operation-id": "compare_policies",
                    "phases": {"coverage": {"generation": {"mode": "negative"}}},
                }
            ],
            "suppress-health-check": ["all"],
            "warnings": False,
        }
    )


def test_every_operation_answers_per_the_document_and_never_5xx(local_stack: LocalStack) -> None:
    schema = schemathesis.openapi.from_url(
        f"{local_stack.base}/openapi.json", config=_config(local_stack.admin_key)
    )
    operations = [r.ok().label for r in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 20
    failures: list[str] = []
    tested: dict[str, set[str]] = {}
    cases = 0
    started = time.monotonic()
    for event in from_schema(schema).execute():
        if isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: {event.info.format()}"[:1500])
        if not isinstance(event, events.ScenarioFinished) or event.is_final:
            continue
        tested.setdefault(event.phase.value, set()).add(event.recorder.label)
        cases += len(event.recorder.cases)
        statuses = {
            case_id: interaction.response.status_code
            for case_id, interaction in event.recorder.interactions.items()
            if interaction.response is not None
        }
        for status in statuses.values():
            tally.observe(status)
        for case_id, checks in event.recorder.checks.items():
            for check in checks:
                if check.failure_info is None:
                    continue
                failures.append(
                    f"{event.recorder.label} [{event.phase.value}] {statuses.get(case_id)} "
                    f"{check.name}: "
                    f"{check.failure_info.failure.title}\n{check.failure_info.failure.message}\n"
                    f"{check.failure_info.code_sample}"[:2000]
                )
    tally.count("fuzz_cases", cases)
    print(f"{cases} cases over {len(operations)} operations in {time.monotonic() - started:.0f} s")
    for phase in ("coverage", "fuzzing"):
        untested = set(operations) - tested.get(phase, set())
        assert not untested, (phase, untested)
    assert not failures, "\n\n".join(dict.fromkeys(failures))
