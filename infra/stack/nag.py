"""cdk-nag acknowledgments: every suppressed AwsSolutions finding carries its reason here."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str, finding: str | None = None) -> None:
    """Acknowledge `rule` (e.g. "AwsSolutions-IAM5") on `scope` and its children.

    `finding` narrows it to one finding, e.g. "Resource::*" or "Action::s3:List*".
    """
    rule_id = f"AwsSolutions::{rule}" + (f"[{finding}]" if finding else "")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id of an L2 construct, as cdk-nag names it in findings."""
    cfn = construct.node.default_child
    assert isinstance(cfn, CfnElement)
    stack = Stack.of(construct)
    return str(stack.resolve(stack.get_logical_id(cfn)))


def nag_resource(scope: IConstruct, value: str) -> str:
    """A resource string as cdk-nag spells it in a finding: `{"Ref": "X"}` becomes `<X>`,
    `{"Fn::GetAtt": ["A", "Arn"]}` becomes `<A.Arn>`, `Fn::Join` is joined."""
    return _spell(Stack.of(scope).resolve(value))


def _spell(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return f"<{arg}>"
        if fn == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if fn == "Fn::Join":
            return str(arg[0]).join(_spell(v) for v in arg[1])
    raise ValueError(f"cannot spell {value!r} the way cdk-nag does")
