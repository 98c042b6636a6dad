"""Decision ids that prove where they came from.

`<uuid>.<meta>.<mac>`: meta carries the agent, served variant and version and the rollout or
experiment; the MAC binds all of it to the tenant that asked. Feedback verifies it against the
caller's tenant, so another tenant's (or a forged) id is simply unknown (404), and feedback can
be attributed to its variant without a lookup on the rank path
(docs/decisions/008-interaction-logs.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from policyhub.domain.errors import PolicyHubError
from policyhub.domain.routing import Variant
from policyhub.signing import b64, sign, unb64, verify

PURPOSE = "decision"


@dataclass(frozen=True)
class DecisionRef:
    uuid: str
    agent_type: str
    variant: Variant
    policy_version: str | None
    rollout_id: str | None
    experiment_id: str | None


def _payload(tenant_id: str, uuid: str, meta: str) -> bytes:
    return f"{tenant_id}\x00{uuid}\x00{meta}".encode()


@lru_cache(maxsize=1024)
def _meta(
    agent_type: str,
    variant: Variant,
    policy_version: str | None,
    rollout_id: str | None,
    experiment_id: str | None,
) -> str:
    """The id's middle part: the same few values for every decision of an agent and variant."""
    fields = [agent_type, variant, policy_version, rollout_id, experiment_id]
    return b64(json.dumps(fields, separators=(",", ":")).encode())


def issue(tenant_id: str, ref: DecisionRef) -> str:
    meta = _meta(ref.agent_type, ref.variant, ref.policy_version, ref.rollout_id, ref.experiment_id)
    return f"{ref.uuid}.{meta}.{sign(PURPOSE, _payload(tenant_id, ref.uuid, meta), 16)}"


def resolve(tenant_id: str, decision_id: str) -> DecisionRef:
    unknown = PolicyHubError("decision_not_found", "no such decision for this tenant")
    parts = decision_id.split(".")
    if len(parts) != 3 or len(decision_id) > 512:
        raise unknown
    uuid, meta, mac = parts
    if not verify(PURPOSE, _payload(tenant_id, uuid, meta), mac, 16):
        raise unknown
    try:
        agent, variant, version, rollout, experiment = json.loads(unb64(meta))
    except ValueError as exc:
        raise unknown from exc
    return DecisionRef(uuid, agent, variant, version, rollout, experiment)
