"""The function catalog agrees with the route table and the handler directories (no synth)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from infra.stack.catalog import (
    CONTAINER_TASKS,
    ROUTE_ACCESS,
    WORKER_FUNCTIONS,
    Access,
    FunctionSpec,
    Level,
    MissingRouteAccessError,
    all_function_specs,
    route_spec,
)
from infra.stack.config import REPO_ROOT, StackConfig
from infra.stack.functions import ROLLOUT_ALARM_PREFIX, retention_days
from infra.stack.logs import firehose_prefix
from policyhub.adapters.cloudwatch_alarms import alarm_names
from policyhub.adapters.interaction_logs import partition
from policyhub.api.routes import ROUTES, ROUTES_BY_NAME, Route
from policyhub.domain.holdout import SPLITS
from policyhub.settings import Need

pytestmark = pytest.mark.xdist_group("infra")

FUNCTIONS_DIR = REPO_ROOT / "functions"

# Lambda's synchronous invocation payload limit; the API Gateway proxy event (headers,
# request context) around the body needs room too.
LAMBDA_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
PROXY_EVENT_OVERHEAD_BYTES = 64 * 1024


def test_every_function_directory_is_a_route_a_worker_or_a_container_task() -> None:
    dirs = {p.name for p in FUNCTIONS_DIR.iterdir() if p.is_dir() and p.name != "__pycache__"}
    lambdas = {spec.name for spec in all_function_specs()}
    assert dirs == lambdas | set(CONTAINER_TASKS)
    assert not lambdas & set(CONTAINER_TASKS)
    for name in lambdas:
        assert (FUNCTIONS_DIR / name / "handler.py").is_file(), name
    for name in CONTAINER_TASKS:
        assert (FUNCTIONS_DIR / name / "Dockerfile").is_file(), name
        assert not (FUNCTIONS_DIR / name / "handler.py").exists(), name


# What a call into the composition root needs beyond the table (services/ and adapters/):
# `container.<service>().<method>(` in an endpoint's source -> the Access it implies.
NEEDS_BY_CALL: dict[str, dict[str, object]] = {
    r"rollouts\(\)\.start\(": {"table": Level.WRITE, "rollout_alarms": True,
                                 "start_rollouts": True},
    r"rollouts\(\)\.(abort|rollback)\(": {"table": Level.WRITE, "rollout_alarms": True},
    r"training\(\)\.start\(": {"table": Level.WRITE, "interactions": Level.READ,
                                 "run_training": True},
    r"experiments\(\)": {"interactions": Level.READ},
    r"comparisons\(\)": {"artifacts": Level.READ, "interactions": Level.READ},
    r"rank_service\(\)": {"signing_secret": True, "log_stream": True},
    r"registry\(\)\.register\(": {"table": Level.WRITE, "artifacts": Level.WRITE},
}  # fmt: skip
LEVEL_ORDER = [Level.NONE, Level.READ, Level.WRITE]


def _satisfies(access: Access, field: str, needed: object) -> bool:
    have = getattr(access, field)
    if isinstance(needed, Level):
        return LEVEL_ORDER.index(have) >= LEVEL_ORDER.index(needed)
    return bool(have) == needed


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_route_access_covers_what_its_endpoint_calls(route: Route) -> None:
    """A route whose endpoint starts a rollout but cannot start executions fails only in AWS
    (AccessDenied); this catches it from the endpoint's source."""
    module_name, function_name = route.endpoint.split(":")
    source = inspect.getsource(getattr(importlib.import_module(module_name), function_name))
    access = ROUTE_ACCESS[route.name]
    for pattern, needs in NEEDS_BY_CALL.items():
        if re.search(pattern, source):
            for field, needed in needs.items():
                assert _satisfies(access, field, needed), (route.name, pattern, field)


@pytest.mark.parametrize("flag", ["rollout_alarms", "start_rollouts", "run_training"])
def test_only_routes_that_call_for_a_capability_get_it(flag: str) -> None:
    granted = {r.name for r in ROUTES if getattr(ROUTE_ACCESS[r.name], flag)}
    callers = set()
    for r in ROUTES:
        module_name, function_name = r.endpoint.split(":")
        source = inspect.getsource(getattr(importlib.import_module(module_name), function_name))
        if any(
            needs.get(flag) and re.search(pattern, source)
            for pattern, needs in NEEDS_BY_CALL.items()
        ):
            callers.add(r.name)
    assert granted == callers


def test_rollout_alarm_prefix_is_the_one_the_code_names_alarms_with() -> None:
    for name in alarm_names(SimpleNamespace(rollout_id="r-20261126-abc")):  # type: ignore[arg-type]
        assert name.startswith(ROLLOUT_ALARM_PREFIX)


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
    assert config.training_image is None
    assert (config.training_cpu, config.training_memory_mib) == (1024, 4096)


def test_firehose_writes_the_layout_the_log_readers_list() -> None:
    at = datetime(2026, 11, 26, 13, 5, tzinfo=UTC)
    for split in SPLITS:
        assert firehose_prefix("acme", "memory_manager", "2026-11-26", "13", split) == partition(
            "acme", "memory_manager", at, split
        )


def test_log_retention_must_be_a_value_cloudwatch_offers() -> None:
    with pytest.raises(ValueError, match="not one CloudWatch offers"):
        retention_days(31)


def test_the_state_machine_setting_is_the_one_the_code_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from infra.stack.rollouts import ROLLOUT_STATE_MACHINE_ENV
    from policyhub.settings import Settings

    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:rollouts"
    monkeypatch.setenv(ROLLOUT_STATE_MACHINE_ENV, arn)
    assert Settings.from_env().rollout_state_machine == arn


def _declared_needs(name: str) -> frozenset[Need]:
    """What a function's code requires at cold start: its route's `needs`, or a worker
    handler's `NEEDS`."""
    if name in ROUTES_BY_NAME:
        return ROUTES_BY_NAME[name].needs
    path = FUNCTIONS_DIR / name / "handler.py"
    spec = importlib.util.spec_from_file_location(f"_policyhub_handler_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    needs: frozenset[Need] = module.NEEDS
    return needs


@pytest.mark.parametrize("spec", all_function_specs(), ids=lambda s: s.name)
def test_each_function_requires_at_cold_start_what_its_grants_stand_for(spec: FunctionSpec) -> None:
    """In AWS a function refuses to start without the settings of its needs; the stack gives
    settings (and permissions) by `Access`. Both must say the same, or a function would
    either start without what it uses or be refused for what it never uses."""
    assert _declared_needs(spec.name) == spec.access.needs
