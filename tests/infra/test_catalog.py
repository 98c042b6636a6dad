"""The function catalog agrees with the route table and the handler directories (no synth)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.stack.catalog import (
    ROUTE_ACCESS,
    WORKER_FUNCTIONS,
    Level,
    MissingRouteAccessError,
    all_function_specs,
    route_spec,
)
from infra.stack.config import REPO_ROOT, StackConfig
from infra.stack.functions import retention_days
from infra.stack.logs import firehose_prefix
from policyhub.adapters.interaction_logs import partition
from policyhub.api.routes import ROUTES, Route

pytestmark = pytest.mark.xdist_group("infra")

FUNCTIONS_DIR = REPO_ROOT / "functions"

# Lambda's synchronous invocation payload limit; the API Gateway proxy event (headers,
# request context) around the body needs room too.
LAMBDA_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
PROXY_EVENT_OVERHEAD_BYTES = 64 * 1024


def test_every_handler_directory_belongs_to_a_route_or_a_worker_function() -> None:
    dirs = {p.parent.name for p in FUNCTIONS_DIR.glob("*/handler.py")}
    assert dirs == {spec.name for spec in all_function_specs()}


def test_every_route_says_what_it_may_access() -> None:
    assert set(ROUTE_ACCESS) == {r.name for r in ROUTES}


def test_a_route_without_an_access_entry_stops_synth_with_a_clear_message() -> None:
    new = Route("brand_new", "GET", "/v1/new", "x:y", "A route nobody granted anything.")
    with pytest.raises(MissingRouteAccessError, match="brand_new"):
        route_spec(new)


def test_read_only_routes_get_read_only_table_access() -> None:
    for r in ROUTES:
        if r.method == "GET":
            assert ROUTE_ACCESS[r.name].table is not Level.WRITE, r.name
            assert ROUTE_ACCESS[r.name].artifacts is not Level.WRITE, r.name


def test_route_functions_take_memory_and_timeout_from_the_route_table() -> None:
    for r in ROUTES:
        spec = route_spec(r)
        assert (spec.memory_mb, spec.timeout_seconds) == (r.memory_mb, r.timeout_seconds)


def test_worker_functions_do_not_shadow_routes() -> None:
    assert not {w.name for w in WORKER_FUNCTIONS} & {r.name for r in ROUTES}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_route_body_limit_fits_in_a_lambda_invocation(route: Route) -> None:
    """A body the handler would accept but Lambda refuses becomes a 5xx in AWS."""
    assert route.max_body_bytes <= LAMBDA_SYNC_PAYLOAD_BYTES - PROXY_EVENT_OVERHEAD_BYTES


def test_api_gateway_timeout_bounds_route_timeouts() -> None:
    assert all(r.timeout_seconds <= 29 for r in ROUTES)


def test_context_given_on_the_command_line_as_text_is_parsed() -> None:
    class Node:
        def try_get_context(self, key: str) -> object:
            return {
                "policyhub:dashboardAgents": "memory_manager, search_agent",
                "policyhub:logRetentionDays": "90",
            }.get(key)

    class Scope:
        node = Node()

    config = StackConfig.from_context(Scope())  # type: ignore[arg-type]
    assert config.dashboard_agents == ("memory_manager", "search_agent")
    assert config.log_retention_days == 90


def test_firehose_writes_the_layout_the_log_readers_list() -> None:
    at = datetime(2026, 11, 26, 13, 5, tzinfo=UTC)
    assert firehose_prefix("acme", "memory_manager", "2026-11-26") == partition(
        "acme", "memory_manager", at
    )


def test_log_retention_must_be_a_value_cloudwatch_offers() -> None:
    with pytest.raises(ValueError, match="not one CloudWatch offers"):
        retention_days(31)
