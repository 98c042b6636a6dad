"""docs/api.md is the API reference a user reads in the repository; it is generated from the
OpenAPI document the service publishes and must say what that document says (issue 14)."""

from __future__ import annotations

from infra.api_reference import OUTPUT, render
from policyhub.api.resolver import openapi_document
from policyhub.api.routes import ROUTES


def test_docs_api_md_is_generated_from_the_current_document() -> None:
    assert OUTPUT.read_text() == render(openapi_document()), (
        "docs/api.md is out of date with GET /v1/openapi.json: run "
        ".venv/bin/python -m infra.api_reference and commit docs/api.md"
    )


def test_the_reference_covers_every_route_and_the_error_envelope() -> None:
    text = OUTPUT.read_text()
    for r in ROUTES:
        assert f"### {r.method} `{r.path}`" in text
        assert f'<a id="op-{r.name}"></a>' in text
    assert "### ErrorEnvelope" in text and "### PipelineConfig" in text
