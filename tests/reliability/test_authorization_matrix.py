"""Hostile callers: every route of the route table by every kind of caller.

The matrix is generated from ROUTES, so a route added tomorrow is covered by the same rules:
no valid key → 401, tier or role too low → 403, otherwise the route answers normally (the
exact status where a known-good request exists, else any non-auth 2xx/4xx); never a 5xx; and
another tenant's admin never sees or changes acme's data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from infra.local.gateway import GatewayResponse, invoke
from policyhub.api.routes import ROUTES, Route
from policyhub.domain.access import Principal, Role, Tier
from tests.reliability import tally
from tests.reliability.support import AGENT, CTX, ITEM, World, artifact_b64, rank_body

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("reliability-matrix")]

DENIED_KEYS = ("no key", "malformed", "unknown", "wrong secret", "revoked")
# Members last but one, then the other tenant, then acme's admin: only the callers allowed to
# write run after the denied ones, so a denied call can never be masked by a later success.
CALLERS: dict[str, tuple[Tier, Role] | None] = {
    **dict.fromkeys(DENIED_KEYS),
    "free member": (Tier.FREE, Role.MEMBER),
    "pro member": (Tier.PRO, Role.MEMBER),
    "other tenant admin": (Tier.PRO, Role.ADMIN),
    "pro admin": (Tier.PRO, Role.ADMIN),
}


@dataclass(frozen=True)
class Sample:
    """A request to a route that acme's admin expects to succeed with the route's status."""

    path_params: dict[str, str]
    body: Callable[[World], Any] | None = None
    query: dict[str, str] | None = None
    other_tenant_status: int | None = None
    """What globex's admin gets for the same request (404 where it names acme's data)."""


SAMPLES: dict[str, Sample] = {
    "get_policy": Sample({"version": "v1.0.1"}, other_tenant_status=404),
    "register_policy": Sample(
        {},
        lambda w: {
            "agent_type": "registered_in_matrix",  # keeps globex's memory_manager empty
            "artifact_base64": artifact_b64(99),
            "feature_schema": {"context_dim": CTX, "item_dim": ITEM},
        },
    ),
    # v1.0.2 is a candidate and v1.0.0 retired whichever of the two runs first.
    "promote_policy": Sample(
        {}, lambda w: {"version": "v1.0.2", "strategy": "immediate"}, other_tenant_status=404
    ),
    "rollback_policy": Sample(
        {}, lambda w: {"version": "v1.0.0", "agent_type": AGENT}, other_tenant_status=404
    ),
    "rank": Sample({}, lambda w: rank_body()),
    "feedback": Sample(
        {}, lambda w: {"decision_id": w.decision_id, "success": True}, other_tenant_status=404
    ),
    "put_constraints": Sample({}, lambda w: {"max_items_per_source": 3}),
}


def _request(route: Route, world: World) -> tuple[str, dict[str, str] | None, Any, bool]:
    """Path, query, body and whether the request is a known-good one."""
    sample = SAMPLES.get(route.name)
    params = dict(sample.path_params) if sample else {}
    for p in route.path_params:
        params.setdefault(p, "v1.0.1" if p == "version" else "does-not-exist")
    path = route.path
    for k, v in params.items():
        path = path.replace("{" + k + "}", v)
    body = None
    if route.method in {"POST", "PUT", "PATCH"}:
        body = sample.body(world) if sample and sample.body else {}
    known = sample is not None or (route.method == "GET" and not route.path_params)
    return path, sample.query if sample else None, body, known


def _call(route: Route, key: str | None, path: str, query: Any, body: Any) -> GatewayResponse:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = key if key == "not-a-key" else f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    q = {k: [v] for k, v in query.items()} if query else None
    r = invoke(route.method, path, headers=headers, query=q, body=data)
    tally.observe(r.status)
    return r


def _allowed(route: Route, grant: tuple[Tier, Role] | None) -> bool:
    if not route.auth:
        return True
    if grant is None:
        return False
    return Principal("t", "k", *grant).satisfies(route.tier, route.role)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_every_caller_gets_401_403_or_the_routes_answer_and_never_another_tenants_data(
    world: World, route: Route
) -> None:
    path, query, body, known = _request(route, world)
    sample = SAMPLES.get(route.name)
    problems: list[str] = []
    for caller, grant in CALLERS.items():
        r = _call(route, world.keys[caller], path, query, body)
        text = r.body.decode(errors="replace")
        label = f"{caller}: {route.method} {path} → {r.status} {text[:200]}"
        if r.status >= 500:
            problems.append(f"5xx for {label}")
            continue
        if "x-request-id" not in {k.lower() for k in r.headers}:
            problems.append(f"no x-request-id for {label}")
        if not _allowed(route, grant):
            want = 401 if grant is None else 403
            code = "unauthorized" if want == 401 else "forbidden"
            if r.status != want or r.json()["error"]["code"] != code:
                problems.append(f"expected {want} for {label}")
            continue
        if r.status in (401, 403):
            problems.append(f"allowed caller refused: {label}")
            continue
        if caller == "other tenant admin":
            leaked = [m for m in world.acme_markers if m in text]
            if leaked:
                problems.append(f"acme data {leaked} visible to {label}")
            expected = sample.other_tenant_status if sample else None
            if known and expected is not None and r.status != expected:
                problems.append(f"expected {expected} for {label}")
            elif known and expected is None and r.status != route.status_code:
                problems.append(f"expected {route.status_code} for {label}")
            continue
        if known and r.status != route.status_code:
            problems.append(f"expected {route.status_code} for {label}")
        elif not known and not (200 <= r.status < 300 or 400 <= r.status < 500):
            problems.append(f"unexpected status for {label}")
    assert not problems, "\n".join(problems)


def test_the_other_tenants_admin_left_no_trace_in_acmes_audit(world: World) -> None:
    from policyhub.api import container

    globex = {k.key_id for k in container.keys().list("globex")}
    events = world.admin.get("/policies/audit", limit=100).json()["items"]
    assert events, "acme has an audit trail"
    assert not [e for e in events if e["actor"] in globex]
