"""`policyhub` — the command line of platform teams (API key management and the policy API)."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from policyhub.cli.local import local_api, use_local_aws
from policyhub.client import ApiError, PolicyHubClient
from policyhub.domain.access import Role, Tier

app = typer.Typer(
    help="policyhub: versioned RL ranking policies, moved to production safely.",
    no_args_is_help=True,
)
keys_app = typer.Typer(
    help="API keys (talks to DynamoDB directly: platform teams only).", no_args_is_help=True
)
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
    """Current production version, rollback targets, active rollout."""
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
) -> None:
    """Promote a candidate (admin)."""
    _print_json(_run(lambda: _client().promote(version, agent_type, strategy, reason)))


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
