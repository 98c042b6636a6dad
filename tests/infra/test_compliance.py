"""cdk-nag AwsSolutions and cfn-lint on the synthesized stack."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from .conftest import Synthesized

pytestmark = pytest.mark.xdist_group("infra")

# CDK itself writes DependsOn on a function's role next to the GetAtt of the same role.
CDK_GENERATED_RULES = {"W3005"}


def _nag_report(s: Synthesized) -> dict[str, Any]:
    """The report CDK's validation framework wrote for the cdk-nag plugin during synth."""
    report = json.loads((s.template_path.parent / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    return cast(dict[str, Any], nag)


def test_cdk_nag_has_no_unacknowledged_findings(synthesized: Synthesized) -> None:
    nag = _nag_report(synthesized)
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []


def test_every_acknowledged_finding_carries_a_reason(synthesized: Synthesized) -> None:
    suppressed = _nag_report(synthesized)["suppressedViolations"]
    assert suppressed
    for finding in suppressed:
        assert len(finding["reason"]) > 40, finding["ruleName"]


def test_acknowledgments_name_one_finding_not_a_whole_rule_family(
    synthesized: Synthesized,
) -> None:
    """IAM5 is acknowledged per wildcard (`[Resource::...]`), never for the whole rule."""
    for finding in _nag_report(synthesized)["suppressedViolations"]:
        if finding["ruleName"].startswith("AwsSolutions-IAM"):
            assert "[" in finding["acknowledgedId"], finding


def test_cfn_lint_passes_on_the_template(synthesized: Synthesized) -> None:
    problems = [
        message
        for rule, message in synthesized.cfn_lint_findings()
        if rule not in CDK_GENERATED_RULES
    ]
    assert problems == []


def test_template_is_plain_json_without_unresolved_tokens(synthesized: Synthesized) -> None:
    assert "${Token[" not in json.dumps(synthesized.template)
