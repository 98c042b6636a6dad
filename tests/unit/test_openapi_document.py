"""The OpenAPI document says what the service does (issue 14): every operation's statuses and
error codes, request schemas as tight as the validation, a description on every field, links
between operations. Generated from the route table and the models, checked here without a
stack (the schemathesis run in tests/reliability checks it against one)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from policyhub.api.errors import envelope
from policyhub.api.models import ErrorEnvelope
from policyhub.api.resolver import ERROR_MEANINGS, error_codes, openapi_document
from policyhub.api.routes import ROUTES, ROUTES_BY_NAME
from policyhub.domain.errors import ERROR_TABLE, ErrorDetail
from policyhub.domain.schema_rules import RULES_KEY

GATEWAY_ONLY = {"not_found", "method_not_allowed"}
"""Codes no operation answers: a path or method no route has (the gateway's 404 and 405)."""


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return openapi_document()


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_field_and_parameter_has_a_description(doc: dict[str, Any]) -> None:
    missing = [
        f"{name}.{prop}"
        for name, schema in doc["components"]["schemas"].items()
        for prop, sub in schema.get("properties", {}).items()
        if not sub.get("description")
    ]
    missing += [
        f"{method.upper()} {path} {p['name']}"
        for path, method, op in _operations(doc)
        for p in op.get("parameters", [])
        if not p.get("description")
    ]
    assert not missing


def test_success_statuses_are_the_routes_own(doc: dict[str, Any]) -> None:
    for r in ROUTES:
        responses = doc["paths"][r.path][r.method.lower()]["responses"]
        success = {int(s) for s in responses if int(s) < 400}
        expected = {s.status for s in r.responses} or {r.status_code}
        assert success == expected, r.name
    promote = doc["paths"]["/v1/policies/promote"]["post"]["responses"]
    schema = promote["202"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Rollout"}
    schema = promote["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/PromotionResponse"}


def test_error_responses_carry_the_envelope_with_the_codes_of_their_status(
    doc: dict[str, Any],
) -> None:
    listed: set[str] = set()
    for r in ROUTES:
        responses = doc["paths"][r.path][r.method.lower()]["responses"]
        errors = {int(s): v for s, v in responses.items() if int(s) >= 400}
        assert set(errors) == set(error_codes(r)), r.name
        for status, response in errors.items():
            envelope_ref, codes = response["content"]["application/json"]["schema"]["allOf"]
            assert envelope_ref == {"$ref": "#/components/schemas/ErrorEnvelope"}
            enum = codes["properties"]["error"]["properties"]["code"]["enum"]
            assert enum and all(ERROR_TABLE[c] == status for c in enum), (r.name, status)
            assert all(f"`{c}`" in response["description"] for c in enum)
            listed.update(enum)
    # A code added to the error table must be declared on the routes that answer with it.
    assert listed == set(ERROR_TABLE) - GATEWAY_ONLY
    assert set(ERROR_MEANINGS) >= set(ERROR_TABLE) - GATEWAY_ONLY


def test_routes_answer_their_kind_of_errors() -> None:
    assert error_codes(ROUTES_BY_NAME["health"]) == {
        400: ["bad_request"],
        429: ["throttled"],
        500: ["internal_error"],
    }
    rank = error_codes(ROUTES_BY_NAME["rank"])
    assert 403 not in rank  # any valid key may rank
    assert rank[422] == ["feature_dimension_mismatch", "validation_error"]
    assert "invalid_cursor" in error_codes(ROUTES_BY_NAME["list_policies"])[400]
    promote = error_codes(ROUTES_BY_NAME["promote_policy"])
    assert promote[403] == ["forbidden"] and "rollout_active" in promote[409]


def test_the_envelope_the_service_sends_is_the_documented_one() -> None:
    body = envelope("version_not_found", "no such version", "req-1", [ErrorDetail("a", "b")])
    assert ErrorEnvelope.model_validate(body).model_dump() == body


def _reachable(doc: dict[str, Any], schema: dict[str, Any], seen: set[str]) -> Iterator[Any]:
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return
        seen.add(schema["$ref"])
    schema = _resolve(doc, schema)
    yield schema
    subs = list(schema.get("properties", {}).values())
    subs += [
        schema[k] for k in ("items", "additionalProperties") if isinstance(schema.get(k), dict)
    ]
    subs += [s for k in ("anyOf", "allOf", "oneOf") for s in schema.get(k, [])]
    for sub in subs:
        yield from _reachable(doc, sub, seen)


def test_request_bodies_are_closed_objects_with_typed_fields(doc: dict[str, Any]) -> None:
    """No free-form object in what a client sends (`pipeline` used to be one): every object
    lists its properties and refuses others, as the validation does."""
    for path, method, op in _operations(doc):
        body = op.get("requestBody")
        if body is None:
            continue
        root = body["content"]["application/json"]["schema"]
        for schema in _reachable(doc, root, set()):
            # (FeedbackRequest's anyOf branches only narrow its own properties: no type.)
            if schema.get("type") == "object":
                assert schema.get("properties"), (method, path, schema)
                assert schema.get("additionalProperties") is False, (method, path, schema)


def test_request_limits_are_in_the_document(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    promote = schemas["PromoteRequest"]["properties"]["pipeline"]
    assert {"$ref": "#/components/schemas/PipelineConfig"} in promote["anyOf"]
    pipeline = schemas["PipelineConfig"]["properties"]
    assert pipeline["canary_steps"]["items"] == {"maximum": 100, "minimum": 1, "type": "integer"}
    assert pipeline["min_success_rate"]["exclusiveMinimum"] == 0
    assert pipeline["min_success_rate"]["exclusiveMaximum"] == 1
    assert pipeline["max_step_seconds"]["minimum"] == 1
    context = schemas["Context"]["properties"]["features"]
    assert context["maxItems"] == 4096 and context["items"]["maximum"] > 3e38
    register = schemas["RegisterRequest"]["properties"]["artifact_base64"]
    assert register["pattern"].startswith("^(?:[A-Za-z0-9+/]{4})*")
    assert "anyOf" in schemas["FeedbackRequest"]  # at least one of success, reward, clicked_ids
    by_schema = {
        name: [r["field"] for r in schema.get(RULES_KEY, [])]
        for name, schema in schemas.items()
        if schema.get(RULES_KEY)
    }
    assert by_schema == {
        "PipelineConfig": ["canary_steps", "max_step_seconds"],
        "PromoteRequest": ["pipeline"],
        "RankRequest": ["candidates"],
        "StartExperiment": ["variants"],
    }


def test_links_lead_to_operations_and_their_parameters(doc: dict[str, Any]) -> None:
    by_id = {op["operationId"]: op for _, _, op in _operations(doc)}
    links = {
        (op["operationId"], status, name): link
        for _, _, op in _operations(doc)
        for status, response in op["responses"].items()
        for name, link in response.get("links", {}).items()
    }
    assert {(o, s) for o, s, _ in links} >= {
        ("start_experiment", "201"),
        ("promote_policy", "202"),
        ("train_policy", "202"),
        ("register_policy", "201"),
    }
    targets = {(o, link["operationId"]) for (o, _, _), link in links.items()}
    assert targets >= {
        ("start_experiment", "get_experiment"),
        ("start_experiment", "stop_experiment"),
        ("promote_policy", "get_rollout"),
        ("promote_policy", "abort_rollout"),
        ("train_policy", "get_training_job"),
        ("register_policy", "get_policy"),
    }
    for (source, status, _), link in links.items():
        target = by_id[link["operationId"]]
        names = {p["name"] for p in target.get("parameters", [])}
        body = next(
            op["responses"][status]["content"]["application/json"]["schema"]
            for _, _, op in _operations(doc)
            if op["operationId"] == source
        )
        fields = _resolve(doc, body)["properties"]
        for param, expression in link["parameters"].items():
            assert param in names, (source, link)
            assert expression.removeprefix("$response.body#/") in fields, (source, link)


def test_the_document_is_stable() -> None:
    assert json.dumps(openapi_document(), sort_keys=True) == json.dumps(
        openapi_document(), sort_keys=True
    )
