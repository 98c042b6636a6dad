"""The rank path's cached deployment pointer: refreshed ahead of its TTL, never older than it."""

from __future__ import annotations

from collections.abc import Callable

from policyhub.domain.routing import ServingView
from policyhub.services.serving_view_cache import ServingViewCache


class World:
    def __init__(self) -> None:
        self.now = 0.0
        self.loads = 0
        self.pending: list[Callable[[], None]] = []
        self.fail = False

    def load(self, tenant_id: str, agent_type: str) -> ServingView:
        if self.fail:
            raise ConnectionError("DynamoDB unreachable")
        self.loads += 1
        return ServingView()

    def cache(self) -> ServingViewCache:
        return ServingViewCache(self.load, 2.0, clock=lambda: self.now,
                                background=self.pending.append)

    def run_background(self) -> None:
        work = list(self.pending)
        self.pending.clear()  # the cache holds this list's append
        for w in work:
            w()


def test_a_fresh_view_is_served_from_the_cache() -> None:
    world = World()
    cache = world.cache()
    first = cache.get("t", "a")
    world.now = 0.9
    assert cache.get("t", "a") is first and world.loads == 1 and not world.pending


def test_past_half_its_ttl_the_view_is_served_and_refreshed_once_in_the_background() -> None:
    world = World()
    cache = world.cache()
    first = cache.get("t", "a")
    world.now = 1.2
    assert cache.get("t", "a") is first and cache.get("t", "a") is first
    assert world.loads == 1 and len(world.pending) == 1  # one refresh, not one per request
    world.run_background()
    world.now = 2.5  # older than the TTL counted from the first read, fresh from the refresh
    assert cache.get("t", "a") is not first and world.loads == 2


def test_a_view_at_its_ttl_is_never_served_and_is_read_before_the_request() -> None:
    world = World()
    cache = world.cache()
    first = cache.get("t", "a")
    world.now = 2.0
    assert cache.get("t", "a") is not first and world.loads == 2


def test_a_failed_background_refresh_leaves_the_next_request_past_the_ttl_to_read_it() -> None:
    world = World()
    cache = world.cache()
    cache.get("t", "a")
    world.now, world.fail = 1.5, True
    cache.get("t", "a")
    world.run_background()  # fails, logged
    world.fail, world.now = False, 2.1
    cache.get("t", "a")
    assert world.loads == 2
    world.now = 3.2
    cache.get("t", "a")
    assert len(world.pending) == 1  # refreshing ahead again after the failure
