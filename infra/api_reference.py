"""docs/api.md, the API reference, generated from the OpenAPI document the service publishes.

    python -m infra.api_reference          # write docs/api.md
    python -m infra.api_reference --check  # exit 1 if docs/api.md is not what the document says

The document (`GET /v1/openapi.json`) is generated from the route table and the request and
response models, so the reference a user reads in the repository is the contract the service
checks. tests/unit/test_api_reference.py fails when docs/api.md is out of date.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from policyhub.api.resolver import openapi_document
from policyhub.domain.schema_rules import RULES_KEY

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "api.md"
REF = "#/components/schemas/"


def _anchor(name: str) -> str:
    return name.lower()


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _type(schema: dict[str, Any]) -> str:
    """A JSON schema in a few words, with links to named schemas."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF)
        return f"[{name}](#{_anchor(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_type(s) for s in schema[key])
    if "allOf" in schema:
        return " and ".join(_type(s) for s in schema["allOf"])
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    kind = schema.get("type", "any")
    if kind == "array":
        text = f"array of {_type(schema.get('items', {}))}"
    elif kind == "object" and "additionalProperties" in schema:
        extra = schema["additionalProperties"]
        text = f"object of {_type(extra)}" if isinstance(extra, dict) and extra else "object"
    else:
        text = str(kind)
    limits = _limits(schema)
    return f"{text} ({limits})" if limits else text


def _limits(schema: dict[str, Any]) -> str:
    parts: list[str] = []
    low, high = schema.get("minimum"), schema.get("maximum")
    xlow, xhigh = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if xlow is not None:
        parts.append(f"> {_num(xlow)}")
    elif low is not None:
        parts.append(f"≥ {_num(low)}")
    if xhigh is not None:
        parts.append(f"< {_num(xhigh)}")
    elif high is not None:
        parts.append(f"≤ {_num(high)}")
    for key, what in (("minLength", "chars ≥"), ("maxLength", "chars ≤")):
        if key in schema:
            parts.append(f"{what} {schema[key]}")
    for key, what in (("minItems", "items ≥"), ("maxItems", "items ≤")):
        if key in schema:
            parts.append(f"{what} {schema[key]}")
    if "pattern" in schema:
        parts.append(f"pattern `{schema['pattern']}`")
    if schema.get("format"):
        parts.append(schema["format"])
    return ", ".join(parts)


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _cell(text: str) -> str:
    """Table cells: a `|` (in a pattern, say) would end the cell."""
    return text.replace("\\|", "|").replace("|", "\\|")


def _fields(schema: dict[str, Any]) -> list[str]:
    props: dict[str, Any] = schema.get("properties", {})
    if not props:
        return []
    required = set(schema.get("required", []))
    lines = ["| field | type | required | default | description |", "|---|---|---|---|---|"]
    for name, sub in props.items():
        default = f"`{json.dumps(sub['default'])}`" if "default" in sub else ""
        lines.append(
            f"| `{name}` | {_cell(_type(sub))} | {'yes' if name in required else ''} | {default} | "
            f"{_one_line(sub.get('description'))} |"
        )
    return lines


def _rules(schema: dict[str, Any]) -> list[str]:
    rules = schema.get(RULES_KEY, [])
    if not rules:
        return []
    return [
        "",
        "Rules beyond the types (a 422 `validation_error` names the field):",
        "",
        *[f"- `{r['field']}`: {r['rule']}" for r in rules],
    ]


def _operation(path: str, method: str, op: dict[str, Any]) -> list[str]:
    lines = [f"### {method.upper()} `{path}`", "", op.get("summary", ""), "", op["description"], ""]
    lines += [f"Operation id: `{op['operationId']}`.", ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for p in params:
            lines.append(
                f"| `{p['name']}` | {p['in']} | {_cell(_type(p.get('schema', {})))} | "
                f"{'yes' if p.get('required') else ''} | {_one_line(p.get('description'))} |"
            )
        lines.append("")
    body = op.get("requestBody")
    if body:
        schema = body["content"]["application/json"]["schema"]
        lines += [f"Request body: {_type(schema)}.", ""]
    lines += ["| status | body | meaning |", "|---|---|---|"]
    for status, response in op["responses"].items():
        content = response.get("content", {}).get("application/json", {}).get("schema", {})
        if "allOf" in content:
            codes = content["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
            kind = "[ErrorEnvelope](#errorenvelope): " + ", ".join(f"`{c}`" for c in codes)
            meaning = "<br>".join(
                line.removeprefix("- ") for line in response["description"].splitlines()
            )
        else:
            kind = _type(content) if content else ""
            meaning = response.get("description", "")
        lines.append(f"| {status} | {kind} | {_one_line(meaning)} |")
    links = [
        (status, name, link)
        for status, response in op["responses"].items()
        for name, link in response.get("links", {}).items()
    ]
    if links:
        lines += ["", "Links:", ""]
        for status, name, link in links:
            params = ", ".join(f"`{k}` = `{v}`" for k, v in link["parameters"].items())
            lines.append(
                f"- {name} (from {status}): [`{link['operationId']}`](#op-{link['operationId']}) "
                f"with {params}. {link.get('description', '')}"
            )
    return [f'<a id="op-{op["operationId"]}"></a>', "", *lines, ""]


def render(doc: dict[str, Any]) -> str:
    info = doc["info"]
    lines = [
        "# policyhub HTTP API reference",
        "",
        "<!-- Generated by `python -m infra.api_reference` from the OpenAPI document the",
        "     service publishes at GET /v1/openapi.json. Do not edit by hand: change the route",
        "     table or the models, then run it again (tests/unit/test_api_reference.py checks",
        "     that it is current). -->",
        "",
        f"Version {info['version']}. {info.get('summary', '')}",
        "",
        info.get("description", ""),
        "",
        "Base URL: `https://<api-id>.execute-api.<region>.amazonaws.com/<stage>` in AWS, "
        "`http://127.0.0.1:3000` on the local stack (`POLICYHUB_PORT`); every path below "
        "starts with `/v1`. A path the API does not have is 404 `not_found`; a method a path "
        "does not serve is 405 `method_not_allowed` (with `Allow`) on the local stack.",
        "",
        "## Operations",
        "",
        "| method | path | what | operation id |",
        "|---|---|---|---|",
    ]
    ops = [(path, m, op) for path, item in doc["paths"].items() for m, op in item.items()]
    ops.sort(key=lambda o: (o[2].get("tags", [""])[0], o[0], o[1]))
    for path, method, op in ops:
        lines.append(
            f"| {method.upper()} | `{path}` | {op.get('summary', '')} | "
            f"[`{op['operationId']}`](#op-{op['operationId']}) |"
        )
    lines.append("")
    tag = None
    for path, method, op in ops:
        if op.get("tags", [""])[0] != tag:
            tag = op.get("tags", [""])[0]
            lines += [f"## {tag}", ""]
        lines += _operation(path, method, op)
    lines += ["## Schemas", ""]
    for name, schema in sorted(doc["components"]["schemas"].items()):
        lines += [f"### {name}", ""]
        if schema.get("description"):
            lines += [_one_line(schema["description"]), ""]
        if "enum" in schema:
            lines += ["One of " + ", ".join(f"`{v}`" for v in schema["enum"]) + ".", ""]
        table = _fields(schema)
        if table:
            lines += table
        lines += _rules(schema)
        for example in schema.get("examples", []):
            lines += ["", "Example:", "", "```json", json.dumps(example, indent=2), "```"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/api.md is stale")
    args = parser.parse_args(argv)
    text = render(openapi_document())
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run python -m infra.api_reference")
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
