from __future__ import annotations

from datetime import UTC, datetime

import pytest

from policyhub.api.routes import ROUTES, match
from policyhub.domain.access import Role, Tier
from policyhub.domain.errors import PolicyHubError
from policyhub.services.keys import KeyService
from tests.support.fakes import FixedClock, MemoryStore


@pytest.fixture
def keys() -> tuple[KeyService, MemoryStore]:
    store = MemoryStore()
    return KeyService(store, FixedClock(datetime(2026, 11, 1, tzinfo=UTC))), store


def test_created_key_authenticates_and_only_its_hash_is_stored(
    keys: tuple[KeyService, MemoryStore],
) -> None:
    service, store = keys
    key, plaintext = service.create("acme", Tier.PRO, Role.ADMIN)
    assert plaintext.startswith(f"ph_live_{key.key_id}_")
    principal = service.authenticate(f"Bearer {plaintext}")
    assert principal is not None and (principal.tenant_id, principal.role) == ("acme", Role.ADMIN)
    secret = plaintext.rsplit("_", 1)[-1] if "_" not in plaintext[25:] else plaintext[25:]
    assert secret not in repr(store.keys) and plaintext not in repr(store.keys)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Basic abc",
        "Bearer ph_live_x_y",
        "Bearer ph_live_0123456789abcdef_" + "a" * 43,
    ],
)
def test_unknown_or_malformed_keys_do_not_authenticate(
    keys: tuple[KeyService, MemoryStore], header: str | None
) -> None:
    assert keys[0].authenticate(header) is None


def test_revoked_key_no_longer_authenticates(keys: tuple[KeyService, MemoryStore]) -> None:
    service, _ = keys
    key, plaintext = service.create("acme", Tier.FREE, Role.MEMBER)
    service.revoke(key.key_id)
    assert service.authenticate(f"Bearer {plaintext}") is None


def test_a_wrong_secret_for_a_real_key_id_is_refused(keys: tuple[KeyService, MemoryStore]) -> None:
    service, _ = keys
    _, plaintext = service.create("acme", Tier.PRO, Role.ADMIN)
    forged = plaintext[:-3] + ("aaa" if not plaintext.endswith("aaa") else "bbb")
    assert service.authenticate(f"Bearer {forged}") is None


def test_tenant_names_are_validated(keys: tuple[KeyService, MemoryStore]) -> None:
    with pytest.raises(PolicyHubError):
        keys[0].create("Bad#Tenant", Tier.PRO, Role.ADMIN)


def test_static_segments_beat_path_parameters() -> None:
    found = match("GET", "/v1/policies/status")
    assert found is not None and found[0].name == "get_status"
    found = match("GET", "/v1/policies/v1.2.3")
    assert found is not None and (found[0].name, found[1]) == ("get_policy", {"version": "v1.2.3"})
    assert match("DELETE", "/v1/policies") is None


def test_every_route_is_unique_and_has_a_handler_file() -> None:
    from pathlib import Path

    keys_ = [(r.method, r.path) for r in ROUTES]
    assert len(keys_) == len(set(keys_))
    for r in ROUTES:
        assert (Path("functions") / r.name / "handler.py").exists(), r.name
