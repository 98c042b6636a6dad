"""`policyhub` — the command line of platform teams (API key management and the policy API).

Text from the API (error messages, reasons, audit reasons) is printed literally: the consoles
do not read Rich markup, so a pattern like `^[a-z][a-z0-9_]{0,62}$` keeps its brackets. A
missing local stack, AWS region or credentials, or an API that does not answer, is one line on
stderr and exit 1 (`run`), not a traceback.
"""

from __future__ import annotations

import difflib
import itertools
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import botocore.exceptions
import requests
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from policyhub.cli.local import LocalStackNotFoundError, local_api, use_local_aws
from policyhub.cli.render import (
    compare_table,
    compare_warnings,
    end_live,
    experiment_summary,
    experiment_table,
    features,
    id_column,
    job_line,
    live_step_lines,
    rollout_is_over,
    rollout_summary,
    rollout_table,
    rollout_view,
)
from policyhub.client import ApiError, PolicyHubClient
from policyhub.domain.access import Role, Tier
from policyhub.domain.versions import DEFAULT_AGENT_TYPE

LOCAL_FLAG = "--local"
KNOWN_AGENTS = [DEFAULT_AGENT_TYPE]
"""Agent types a misspelling is matched against: the API has no route that lists a tenant's
agents, so these are the ones the CLI knows of (the default)."""
PIPE_WIDTH = 160
"""Console width when stdout is not a terminal and COLUMNS is unset (Rich would use 80)."""


class PolicyhubApp(typer.Typer):
    """The console script calls the app: through `run`, so `--local` goes anywhere and known
    failures are one line."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return super().__call__(*args, **kwargs)
        sys.exit(run(sys.argv[1:]))


app = PolicyhubApp(
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


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(markup=False, stderr=stderr, width=PIPE_WIDTH if piped else None)


console = _console()
errors = _console(stderr=True)


class State:
    local = False


AgentOpt = Annotated[str | None, typer.Option("--agent-type", "-a", help="Agent type.")]


@app.callback()
def main(
    local: Annotated[bool, typer.Option("--local", help="Use the local stack.")] = False,
) -> None:
    State.local = local


def hoist_local(argv: Sequence[str]) -> list[str]:
    """`--local` is the app's option, but users write it after the command too
    (`policyhub status --local`): move it to the front (never past a `--`)."""
    args = list(argv)
    end = args.index("--") if "--" in args else len(args)
    if LOCAL_FLAG not in args[:end]:
        return args
    return [LOCAL_FLAG, *(a for i, a in enumerate(args) if i >= end or a != LOCAL_FLAG)]


def run(argv: Sequence[str] | None = None) -> int:
    """The CLI on `argv` (default: sys.argv[1:]); returns the exit code."""
    args = hoist_local(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        command.main(args=args, prog_name="policyhub", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except LocalStackNotFoundError as exc:
        return _fail(str(exc))
    except botocore.exceptions.NoRegionError:
        return _fail(
            "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a region in "
            "~/.aws/config), or add --local to use the local stack"
        )
    except botocore.exceptions.NoCredentialsError:
        return _fail(
            "no AWS credentials: configure them (aws configure, SSO or AWS_* variables), "
            "or add --local to use the local stack"
        )
    except botocore.exceptions.EndpointConnectionError as exc:
        return _fail(f"cannot reach AWS at {exc.kwargs.get('endpoint_url', '?')}: {exc}")
    except requests.ConnectionError as exc:
        url = exc.request.url if exc.request is not None else "the API"
        return _fail(f"cannot reach {url}: is the API up? (locally: `make up` in this directory)")
    return 0


def _fail(message: str) -> int:
    errors.print(f"policyhub: {message}", soft_wrap=True)
    return 1


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
            Text.assemble(
                (f"error {exc.status} {exc.code}", "red"),
                f": {exc.message} (request {exc.request_id})",
            )
        )
        raise typer.Exit(1) from exc


def _no_versions(client: PolicyHubClient, agent_type: str) -> NoReturn:
    """An agent without versions is most often a misspelled one: say so, suggest the close
    names that have versions, exit 1. The API lists no agents, so the names asked are the
    agent types this CLI knows of (KNOWN_AGENTS), each checked for versions."""
    message = f"agent {agent_type!r} has no policy versions in this tenant"
    close: list[tuple[str, int]] = []
    for name in difflib.get_close_matches(agent_type, KNOWN_AGENTS, n=3, cutoff=0.6):
        if name != agent_type:
            total = int(_run(lambda agent=name: client.status(agent))["total_versions"])
            if total:
                close.append((name, total))
    if close:
        message += "; did you mean " + " or ".join(
            f"{name} ({total} versions: -a {name})" for name, total in close
        )
    else:
        message += (
            " (a new agent gets its first version from `policyhub train` or "
            "POST /v1/policies; `-a` names the agent, default memory_manager)"
        )
    errors.print(f"policyhub: {message}", soft_wrap=True)
    raise typer.Exit(1)


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data))


@app.command()
def status(agent_type: AgentOpt = None) -> None:
    """Current production version, rollback targets, active rollout and experiment."""
    client = _client()
    s = _run(lambda: client.status(agent_type))
    if not s["total_versions"]:
        _no_versions(client, s["agent_type"])
    prod = s.get("production")
    console.print(
        Text.assemble("agent ", (s["agent_type"], "bold"), f" · {s['total_versions']} versions")
    )
    if prod:
        schema = prod.get("feature_schema")
        console.print(
            Text.assemble(
                "production: ",
                (prod["version"], "green"),
                f" since {prod['promoted_at']}",
                f" · features {features(schema)} (context/item)" if schema else "",
            )
        )
    else:
        console.print("production: none yet")
    if s["previous"]:
        console.print(Text("rollback targets: ") + rollback_targets(s))
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
    """Policy versions, newest first; features are context/item dimensions."""
    client = _client()
    versions = _run(lambda: list(client.policies(agent_type, status)))
    if not versions and status is None:
        _no_versions(client, agent_type or DEFAULT_AGENT_TYPE)
    table = Table()
    id_column(table, "version", [p["version"] for p in versions])
    for header in ("status", "features", "created", "promoted", "sha256"):
        table.add_column(header)
    for p in versions:
        table.add_row(
            p["version"],
            p["status"],
            features(p.get("feature_schema")),
            p["created_at"],
            p["promoted_at"] or "",
            p["artifact"]["sha256"][:12],
        )
    console.print(table)


def rollback_targets(status: dict[str, Any]) -> Text:
    """`v1.2.2 (8/8) · v1.1.1 (8/4: not production's 8/8, needs --force)`: a rollback to a
    version with other features than production's is refused without force (decision 105)."""
    prod = status.get("production") or {}
    serving = features(prod.get("feature_schema")) if prod.get("feature_schema") else None
    parts = []
    for p in status["previous"]:
        if not p.get("feature_schema"):
            parts.append(Text(p["version"]))
            continue
        mine = features(p["feature_schema"])
        if serving is not None and mine != serving:
            note = f" ({mine}: not production's {serving}, needs --force)"
            parts.append(Text.assemble(p["version"], (note, "yellow")))
        else:
            parts.append(Text(f"{p['version']} ({mine})"))
    return Text(" · ").join(parts)


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
    for warning in compare_warnings(result):
        console.print(Text(f"  ! {warning}", style="yellow"))
    console.print(
        Text.assemble(
            "recommendation: ",
            (result["recommendation"], "bold"),
            f" (improvement: {result['is_improvement']})",
        )
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
    found = _run(lambda: list(itertools.islice(_client().training_jobs(agent_type), limit)))
    table = Table()
    id_column(table, "job", [j["job_id"] for j in found])
    for header in ("status", "trigger", "created", "finished", "interactions", "candidate"):
        table.add_column(header)
    for j in found:
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
    force: Annotated[
        bool,
        typer.Option(
            help="Restore a version whose features differ from production's (clients changed "
            "too); without it the API refuses, naming both feature schemas."
        ),
    ] = False,
) -> None:
    """Restore a previous production version at once (admin). `status` lists the targets
    with their features (context/item)."""
    _print_json(_run(lambda: _client().rollback(version, agent_type, reason, force=force)))


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
    found = _run(lambda: list(itertools.islice(_client().rollouts(agent_type), limit)))
    table = Table()
    id_column(table, "rollout", [r["rollout_id"] for r in found])
    for header in ("candidate", "baseline", "strategy", "state", "traffic", "started"):
        table.add_column(header)
    for r in found:
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
    end_live(console)
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
    found = _keys().list(tenant)
    table = Table()
    id_column(table, "key_id", [k.key_id for k in found])
    for header in ("tier", "role", "created", "revoked"):
        table.add_column(header)
    for k in found:
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
