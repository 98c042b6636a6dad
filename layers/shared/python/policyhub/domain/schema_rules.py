"""Rules on a request that JSON Schema cannot state: a sum, an order, uniqueness by a key, one
field against another.

A model lists its own in its JSON schema as `x-rules`, each with the field (relative to the
model) that the 422 names when the rule is broken. The OpenAPI document then says every rule
the service enforces, and a client or a fuzzer can tell a refusal by such a rule from a schema
that is looser than the validation (issue 14, docs/decisions).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

RULES_KEY = "x-rules"


def rules(**by_field: str) -> dict[str, Any]:
    """`json_schema_extra` for a model: `field=rule` pairs, in the order they are checked."""
    return {RULES_KEY: [{"field": field, "rule": rule} for field, rule in by_field.items()]}


def rules_of(model: type[BaseModel]) -> dict[str, Any]:
    """A model's own rules, for a subclass that sets `json_schema_extra` again (pydantic
    replaces the whole value)."""
    extra = model.model_config.get("json_schema_extra")
    return {RULES_KEY: extra[RULES_KEY]} if isinstance(extra, dict) and RULES_KEY in extra else {}
