from __future__ import annotations

import pytest

from policyhub.api.cursor import decode_cursor, encode_cursor
from policyhub.domain.errors import PolicyHubError

KEY = {"pk": "T#acme#A#memory_manager", "sk": "VERSION#000001.000000.000003"}
SCOPE = {"agent_type": "memory_manager", "status": None}


def test_cursor_round_trips_for_its_tenant_and_listing() -> None:
    cursor = encode_cursor("versions", "acme", SCOPE, KEY)
    assert decode_cursor(cursor, "versions", "acme", SCOPE) == KEY


@pytest.mark.parametrize(
    ("kind", "tenant", "scope"),
    [
        ("versions", "other", SCOPE),
        ("audit", "acme", SCOPE),
        ("versions", "acme", {"agent_type": "memory_manager", "status": "candidate"}),
    ],
)
def test_cursor_is_refused_elsewhere(kind: str, tenant: str, scope: dict[str, object]) -> None:
    cursor = encode_cursor("versions", "acme", SCOPE, KEY)
    with pytest.raises(PolicyHubError) as err:
        decode_cursor(cursor, kind, tenant, scope)
    assert err.value.code == "invalid_cursor" and err.value.status == 400


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),
        lambda c: "x" + c,
        lambda c: c.split(".")[0],
        lambda c: "not a cursor",
        lambda c: "%%%.###",
        lambda c: c[:-1] + "\x80",  # compare_digest refuses non-ASCII str: must not escape
        lambda c: c[:-1] + "\ud800",
    ],
)
def test_tampered_cursor_is_refused(mangle: object) -> None:
    cursor = encode_cursor("versions", "acme", SCOPE, KEY)
    with pytest.raises(PolicyHubError) as err:
        decode_cursor(mangle(cursor), "versions", "acme", SCOPE)  # type: ignore[operator]
    assert err.value.code == "invalid_cursor"
