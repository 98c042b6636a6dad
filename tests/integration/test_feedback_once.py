"""Feedback is recorded at most once (Powertools idempotency on the registry table), also when
the first requests of a fresh process arrive together, as they do at the threaded local API."""

from __future__ import annotations

import threading
import time

import pytest

from policyhub.adapters.idempotency import PowertoolsOnce
from policyhub.resources import REGISTRY_TABLE

pytestmark = [
    pytest.mark.integration,
    # No Lambda context outside a request: Powertools says it cannot bound the claim's time.
    pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time:UserWarning"),
]


def test_the_first_claim_runs_alone_so_concurrent_first_requests_never_see_half_a_setup(
    embedded_aws: None,
) -> None:
    """Powertools marks its store configured before it is; a request that ran beside the first
    one hashed its key with half a configuration (a 500 at the demo's first feedback). The
    first claim therefore runs alone: a second one waits until it is done."""
    once = PowertoolsOnce(REGISTRY_TABLE.default_name, "feedback")
    first_running, release = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        first_running.set()
        release.wait(5)
        order.append("first")

    def second() -> None:
        order.append("second")

    a = threading.Thread(target=once.run_once, args=("key-a", first))
    a.start()
    assert first_running.wait(5)
    b = threading.Thread(target=once.run_once, args=("key-b", second))
    b.start()
    time.sleep(0.3)
    assert order == [], "the second claim ran while the first was still setting up"
    release.set()
    a.join(5)
    b.join(5)
    assert order == ["first", "second"]

    # After the first, claims run side by side, and each key still runs once.
    ran: list[str] = []
    threads = [
        threading.Thread(target=once.run_once, args=(f"key-{i % 4}", lambda: ran.append("x")))
        for i in range(12)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(ran) == 4
