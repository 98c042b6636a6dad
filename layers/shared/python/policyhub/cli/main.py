"""`policyhub` — the command line of platform teams (API key management and the policy API)."""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from policyhub.cli.local import local_api, use_local_aws
from policyhub.cli.render import (
    compare_table,
    experiment_summary,
    experiment_table,
    job_line,
    live_step_lines,
    rollout_is_over,
    rollout_summary,
    rollout_table,
    rollout_view,
)
from policyhub.client import ApiError, PolicyHubClient
from policyhub.domain.access import Role, Tier

app = typer.Typer(
    help="policyhub: versioned RL ranking policies, moved to production safely.",
    no_args_is_help=True,
)
rollouts_app = typer.Typer(help="Safe rollouts: list, watch live, abort.", no_args_is_help=True)
experiments_app = typer.Typer(help="A/B experiments: start, show, stop.", no_args_is_help=True)
keys_app = typer.Typer(
    help="API keys (talks to DynamoDB directly: platform teams only).", no_args_is_help=True
)
app.add_typer(rollouts_app, name="rollouts")
app.add_typer(experiments_app, name="experiments")
app.add_typer(keys_app, name="keys")
console = Console()


class State:
    local = False


AgentOpt = Annotated[str | None, typer.Option("--agent-type", "-a", help="Agent type.")]


@app.callback()
def main(
    local: Annotated[bool, typer.Option("--local", help="Use the local stack.")] = False,
) -> None:
    State.local = local


def _client() -> PolicyHubClient:
    if State.local:
        url, key = local_api()
        return PolicyHubClient(url, os.environ.get("POLICYHUB_API_KEY", key))
    url = os.environ.get("POLICYHUB_API_URL", "")
    if not url:
        raise typer.BadParameter("set POLICYHUB_API_URL and POLICYHUB_API_KEY, or use --local")
    return PolicyHubClient(url, os.environ.get("POLICYHUB_API_KEY"))


def _run(call: Any) -> Any:
    try:
        return call()
    except ApiError as exc:
        console.print(
            f"[red]error {exc.status} {exc.code}[/red]: {exc.message} (request {exc.request_id})"
        )
        raise typer.Exit(1) from exc


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data))


@app.command()
def status(agent_type: AgentOpt = None) -> None:
    """Current production version, rollback targets, active rollout and experiment."""
    s = _run(lambda: _client().status(agent_type))
    prod = s.get("production")
    console.print(f"agent [bold]{s['agent_type']}[/bold] · {s['total_versions']} versions")
    console.print(
        f"production: [green]{prod['version']}[/green] since {prod['promoted_at']}"
        if prod
        else "production: none yet"
    )
    if s["previous"]:
        console.print("rollback targets: " + ", ".join(p["version"] for p in s["previous"]))
    rollout, experiment = s.get("rollout"), s.get("experiment")
    if rollout:
        console.print(rollout_summary(rollout))
        for line in live_step_lines(rollout):
            console.print(line)
    if experiment:
        console.print(experiment_summary(experiment))
    if not rollout and not experiment:
        console.print("no rollout or experiment is running")


@app.command("list")
def list_(
    agent_type: AgentOpt = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
) -> None:
    """Policy versions, newest first."""
    table = Table("version", "status", "created", "promoted", "sha256")
    for p in _run(lambda: list(_client().policies(agent_type, status))):
        table.add_row(
            p["version"],
            p["status"],
            p["created_at"],
            p["promoted_at"] or "",
            p["artifact"]["sha256"][:12],
        )
    console.print(table)


@app.command()
def show(version: str, agent_type: AgentOpt = None) -> None:
    """One version, in full."""
    _print_json(_run(lambda: _client().policy(version, agent_type)))


@app.command()
def promote(
    version: str,
    agent_type: AgentOpt = None,
    strategy: Annotated[str | None, typer.Option(help="safe|canary|immediate")] = None,
    reason: Annotated[str | None, typer.Option()] = None,
    pipeline: Annotated[
        str | None, typer.Option(help="Pipeline overrides as JSON, e.g. '{\"step_seconds\": 60}'.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(help="Promote a version an earlier rollout rolled back as unhealthy."),
    ] = False,
) -> None:
    """Promote a candidate (admin); safe and canary start a rollout (see `rollouts watch`).
    A version an earlier rollout aborted or rolled back as inconclusive may be promoted again
    as it is; one rolled back as unhealthy needs --force."""
    overrides = _json_option(pipeline, "--pipeline")
    _print_json(
        _run(
            lambda: _client().promote(version, agent_type, strategy, reason, overrides, force=force)
        )
    )


def _json_option(text: str | None, name: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint=name) from exc
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint=name)
    return value


@app.command()
def compare(
    baseline: str,
    candidate: str,
    agent_type: AgentOpt = None,
    window_hours: Annotated[int | None, typer.Option(help="Logs of the last N hours.")] = None,
    min_samples: Annotated[int | None, typer.Option(help="Held-out decisions needed.")] = None,
) -> None:
    """Compare two versions by off-policy evaluation on the logs."""
    result = _run(
        lambda: _client().compare(baseline, candidate, agent_type, window_hours, min_samples)
    )
    console.print(compare_table(result))
    console.print(
        f"recommendation: [bold]{result['recommendation']}[/bold] "
        f"(improvement: {result['is_improvement']})"
    )
    for reason in result["reasons"]:
        console.print(f"  · {reason}")


@app.command()
def train(
    agent_type: AgentOpt = None,
    force: Annotated[bool, typer.Option(help="Train even with few new interactions.")] = False,
) -> None:
    """Start a training job; it registers a candidate when it succeeds (see `jobs`)."""
    job = _run(lambda: _client().train(agent_type, force))
    console.print(job_line(job))


@app.command()
def jobs(
    agent_type: AgentOpt = None,
    job_id: Annotated[str | None, typer.Option("--id", help="One job, in full.")] = None,
    limit: Annotated[int, typer.Option(help="How many jobs.")] = 20,
) -> None:
    """Training jobs of an agent, newest first (or one job with --id)."""
    if job_id:
        _print_json(_run(lambda: _client().training_job(job_id)))
        return
    table = Table("job", "status", "trigger", "created", "finished", "interactions", "candidate")
    for j in _run(lambda: list(itertools.islice(_client().training_jobs(agent_type), limit))):
        table.add_row(
            j["job_id"],
            j["status"],
            j["trigger"],
            j["created_at"],
            j.get("finished_at") or "",
            str(j.get("interactions_used") or ""),
            j.get("candidate_version") or "",
        )
    console.print(table)


@app.command()
def rollback(
    version: str,
    agent_type: Annotated[str, typer.Option("--agent-type", "-a")] = "memory_manager",
    reason: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Restore a previous production version at once (admin)."""
    _print_json(_run(lambda: _client().rollback(version, agent_type, reason)))


@app.command()
def audit(
    agent_type: AgentOpt = None, limit: Annotated[int, typer.Option(help="How many events.")] = 20
) -> None:
    """Who changed what, newest first."""
    table = Table("at", "actor", "action", "from", "to", "reason")
    events = _run(
        lambda: [e for _, e in zip(range(limit), _client().audit(agent_type), strict=False)]
    )
    for e in events:
        table.add_row(
            e["at"],
            e["actor"],
            e["action"],
            e["from_version"] or "",
            e["to_version"] or "",
            e["reason"] or "",
        )
    console.print(table)


@app.command()
def traffic(
    agent_type: AgentOpt = None,
    rps: Annotated[
        float, typer.Option(min=0.01, help="Visits per second, paced evenly (not a burst).")
    ] = 20.0,
    duration: Annotated[
        float | None, typer.Option(min=0.0, help="Seconds to play (default: until Ctrl-C).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the users' requests and outcomes.")] = 0,
) -> None:
    """Play simulated users: rank, then feedback with the simulator's true outcome; Ctrl-C stops."""
    # Imported here: the simulator loads numpy and onnxruntime, which no other command needs.
    from policyhub.cli.traffic import run_traffic

    code = run_traffic(_client, agent_type, rps, duration, seed, echo=typer.echo)
    if code:
        raise typer.Exit(code)


@rollouts_app.command("list")
def rollouts_list(
    agent_type: AgentOpt = None, limit: Annotated[int, typer.Option(help="How many.")] = 20
) -> None:
    """Rollouts of an agent, newest first."""
    table = Table("rollout", "candidate", "baseline", "strategy", "state", "traffic", "started")
    for r in _run(lambda: list(itertools.islice(_client().rollouts(agent_type), limit))):
        table.add_row(
            r["rollout_id"],
            r["candidate_version"],
            r["baseline_version"] or "",
            r["strategy"],
            r["state"],
            f"{r['traffic_percent']:g}%",
            r["started_at"],
        )
    console.print(table)


@rollouts_app.command("watch")
def rollouts_watch(
    rollout_id: str,
    agent_type: AgentOpt = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 2.0,
) -> None:
    """Follow a rollout live until it is over; exit 1 unless it was promoted."""
    client = _client()
    rollout = _run(lambda: client.rollout(rollout_id, agent_type))
    with Live(rollout_view(rollout), console=console, refresh_per_second=4) as live:
        while not rollout_is_over(rollout):
            time.sleep(interval)
            rollout = _run(lambda: client.rollout(rollout_id, agent_type))
            live.update(rollout_view(rollout))
    console.print()  # Live's last frame ends without a newline when stdout is not a terminal
    if rollout["state"] != "promoted":
        raise typer.Exit(1)


@rollouts_app.command("abort")
def rollouts_abort(
    rollout_id: str,
    agent_type: AgentOpt = None,
    reason: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Stop a rollout; traffic returns to production (admin)."""
    rollout = _run(lambda: _client().abort_rollout(rollout_id, agent_type, reason))
    console.print(rollout_table(rollout))


@experiments_app.command("start")
def experiments_start(
    name: Annotated[str, typer.Option(help="What the experiment tests.")],
    variant: Annotated[
        list[str], typer.Option("--variant", "-v", help="VERSION=PERCENT, repeated.")
    ],
    agent_type: AgentOpt = None,
    duration_seconds: Annotated[int | None, typer.Option(help="Stop serving it after.")] = None,
) -> None:
    """Start an A/B experiment, e.g. -v v1.2.4=50 -v v1.2.5=50 (admin)."""
    arms: list[tuple[str, float]] = []
    for spec in variant:
        version, sep, percent = spec.partition("=")
        try:
            arms.append((version, float(percent)))
        except ValueError as exc:
            raise typer.BadParameter(f"{spec!r} is not VERSION=PERCENT") from exc
        if not sep:
            raise typer.BadParameter(f"{spec!r} is not VERSION=PERCENT")
    exp = _run(lambda: _client().start_experiment(name, arms, agent_type, duration_seconds))
    console.print(experiment_table(exp))


@experiments_app.command("show")
def experiments_show(experiment_id: str, agent_type: AgentOpt = None) -> None:
    """Per-arm results, winner (only when significant) and the sample-ratio check."""
    console.print(experiment_table(_run(lambda: _client().experiment(experiment_id, agent_type))))


@experiments_app.command("stop")
def experiments_stop(
    experiment_id: str,
    agent_type: AgentOpt = None,
    reason: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Stop an experiment; its results are frozen and production serves again (admin)."""
    exp = _run(lambda: _client().stop_experiment(experiment_id, agent_type, reason))
    console.print(experiment_table(exp))


def _keys() -> Any:
    if State.local:
        use_local_aws()
    from policyhub.api import container

    container.reset()
    return container.keys()


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option()],
    tier: Annotated[Tier, typer.Option()] = Tier.PRO,
    role: Annotated[Role, typer.Option()] = Role.MEMBER,
) -> None:
    """Create a key; the key is printed once, alone on the last line."""
    key, plaintext = _keys().create(tenant, tier, role)
    typer.echo(
        f"created key {key.key_id} for tenant {tenant} ({tier.value}/{role.value}); "
        "store it now, it cannot be shown again:"
    )
    typer.echo(plaintext)


@keys_app.command("list")
def keys_list(tenant: Annotated[str, typer.Option()]) -> None:
    """Keys of a tenant (ids only; secrets are never stored)."""
    table = Table("key_id", "tier", "role", "created", "revoked")
    for k in _keys().list(tenant):
        table.add_row(
            k.key_id,
            k.tier.value,
            k.role.value,
            k.created_at.isoformat(),
            k.revoked_at.isoformat() if k.revoked_at else "",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key (takes effect within the authorizer cache TTL)."""
    k = _keys().revoke(key_id)
    typer.echo(f"revoked {k.key_id} of tenant {k.tenant_id}")
