"""Rich renderings of API objects, shared by the CLI and `make demo`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console, Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

VERDICT_STYLE = {"healthy": "green", "unhealthy": "bold red", "inconclusive": "yellow"}
STATE_STYLE = {
    "shadow": "cyan",
    "canary": "yellow",
    "promoted": "bold green",
    "rolled_back": "bold red",
    "aborted": "magenta",
}
TERMINAL_STATES = frozenset({"rolled_back", "aborted"})


def _pct(x: Any) -> str:
    return "" if x is None else f"{float(x):.1%}"


def _ms(x: Any) -> str:
    return "" if x is None else f"{float(x):.1f} ms"


def _num(x: Any, digits: int = 4) -> str:
    return "" if x is None else f"{float(x):.{digits}f}"


def features(schema: dict[str, Any] | None) -> str:
    """A feature schema, compactly: context/item dimensions (`8/8`)."""
    if not schema:
        return "?"
    return f"{schema['context_dim']}/{schema['item_dim']}"


def id_column(table: Table, header: str, ids: list[str]) -> None:
    """A column of ids, always whole: never wrapped or cut with an ellipsis to fit a narrow
    console (the other columns give way instead)."""
    width = max([len(header), *(len(i) for i in ids)])
    table.add_column(header, no_wrap=True, min_width=width)


def end_live(console: Console) -> None:
    """After a Live display stops: on a terminal Live ends its last frame with a newline,
    elsewhere (a pipe, a log file) it does not, and the next line would run into it."""
    if not console.is_terminal:
        console.line()


def outcome_reason(rollout: dict[str, Any]) -> str:
    """The rollout's outcome reason without the state it starts with ("rolled back: …",
    "aborted: …"), for text that already says the state."""
    reason = str(rollout.get("outcome_reason") or "")
    said = str(rollout["state"]).replace("_", " ") + ": "
    return reason[len(said) :] if reason.startswith(said) else reason


def outcome_line(rollout: dict[str, Any]) -> Text:
    """`rolled back: unhealthy in …`, the state said once, in its colour."""
    state = str(rollout["state"])
    return Text.assemble(
        (state.replace("_", " ") + ": ", STATE_STYLE.get(state, "")), outcome_reason(rollout)
    )


def rollout_is_over(rollout: dict[str, Any]) -> bool:
    """Terminal: rolled back, aborted, or promoted with the post-promotion watch over."""
    if rollout["state"] in TERMINAL_STATES:
        return True
    return rollout["state"] == "promoted" and rollout.get("ended_at") is not None


def step_label(step: dict[str, Any]) -> str:
    if step["stage"] == "canary":
        return f"canary {step['traffic_percent']:g}%"
    return str(step["stage"]).replace("_", "-")


def rollout_table(rollout: dict[str, Any]) -> Table:
    """Every step with both variants' numbers and the verdict."""
    state = rollout["state"]
    title = Text.assemble(
        f"rollout {rollout['rollout_id']} · {rollout['candidate_version']} vs "
        f"{rollout['baseline_version']} · ",
        (state, STATE_STYLE.get(state, "")),
        f" · traffic {rollout['traffic_percent']:g}%",
    )
    table = Table(title=title, title_justify="left")
    for col in ("step", "baseline n", "baseline ok", "baseline p95"):
        table.add_column(col, justify="right" if col != "step" else "left")
    for col in ("candidate n", "candidate ok", "candidate p95", "verdict"):
        table.add_column(col, justify="right" if col != "verdict" else "left")
    for step in rollout["steps"]:
        base, cand = step.get("baseline") or {}, step.get("candidate") or {}
        verdict = step.get("verdict")
        table.add_row(
            step_label(step),
            str(base.get("requests", "")),
            _pct(base.get("success_rate")),
            _ms(base.get("latency_p95_ms")),
            str(cand.get("requests", "")),
            _pct(cand.get("success_rate")),
            _ms(cand.get("latency_p95_ms")),
            Text(verdict or "…", style=VERDICT_STYLE.get(verdict or "", "dim")),
        )
    return table


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def duration(seconds: float) -> str:
    """12 s, 3m05s, 1h04m."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


CHECK_LABELS = {"success_rate": "success rate", "latency_p95_ratio": "p95 latency"}


def live_step_lines(rollout: dict[str, Any], now: datetime | None = None) -> list[Text]:
    """Why the open step waits: time against its minimum and deadline, samples against what
    a step needs, each check's share of its planned information, and the latest reasons."""
    if rollout_is_over(rollout):
        return []
    now = now or datetime.now(UTC)
    step = rollout["steps"][-1]
    progress = step.get("progress") or {}
    config = rollout.get("config") or {}
    started = _when(step["started_at"])
    elapsed = (now - started).total_seconds()
    minimum = progress.get("minimum_seconds")
    deadline = (
        _when(progress["deadline_at"])
        if progress.get("deadline_at")
        else started + timedelta(seconds=float(config.get("max_step_seconds", 0)))
    )
    left = (deadline - now).total_seconds()
    timing = f"{step_label(step)} · elapsed {duration(elapsed)}"
    if minimum is not None:
        timing += f" of minimum {duration(minimum)}" + (
            " (passed)" if elapsed >= minimum else ""
        )
    timing += f" · deadline in {duration(left)}" if left > 0 else " · deadline passed"
    lines = [Text.assemble(("live step: ", "bold"), timing)]
    need = progress.get("samples_needed")
    base, cand = step.get("baseline") or {}, step.get("candidate") or {}
    if need is not None:
        if step["stage"] == "shadow":
            parts = [f"candidate scored {cand.get('requests', 0):,} / {need:,} decisions",
                     f"production served {base.get('requests', 0):,}"]
        elif step["stage"] == "canary" and step["traffic_percent"] < 100:
            parts = [f"baseline {base.get('requests', 0):,} / {need:,}",
                     f"candidate {cand.get('requests', 0):,} / {need:,}"]
        else:
            parts = [f"candidate {cand.get('requests', 0):,} / {need:,}",
                     f"baseline reference {base.get('requests', 0):,} (pooled from the "
                     "earlier steps)"]
        lines.append(Text("samples: " + " · ".join(parts)))
    information = progress.get("information") or {}
    if information:
        shares = " · ".join(
            f"{CHECK_LABELS.get(k, k)} {min(v, 1.0):.0%}" for k, v in sorted(information.items())
        )
        lines.append(
            Text(f"planned information: {shares} (a check concludes at 100 % at the latest)")
        )
    for reason in step.get("reasons") or []:
        lines.append(Text(f"  · {reason}", style="dim"))
    if not step.get("progress"):
        lines.append(Text("  · waiting for the first look at this step", style="dim"))
    return lines


def rollout_summary(rollout: dict[str, Any]) -> Text:
    state = rollout["state"]
    return Text.assemble(
        ("rollout: ", "bold"),
        f"{rollout['rollout_id']} · {rollout['candidate_version']} vs "
        f"{rollout['baseline_version'] or 'retrieval order'} · {rollout['strategy']} · ",
        (state, STATE_STYLE.get(state, "")),
        f" · candidate serves {rollout['traffic_percent']:g}% · started {rollout['started_at']}"
        f" (`policyhub rollouts watch {rollout['rollout_id']}`)",
    )


def experiment_summary(experiment: dict[str, Any]) -> Text:
    arms = ", ".join(
        f"{arm['version']} {arm['traffic_percent']:g}% ({arm.get('decisions', 0):,} decisions)"
        for arm in experiment["variants"]
    )
    winner = experiment.get("winner")
    return Text.assemble(
        ("experiment: ", "bold"),
        f"{experiment['experiment_id']} '{experiment['name']}' · {experiment['state']} · {arms}"
        f" · winner {winner or 'none yet'}",
    )


def rollout_view(rollout: dict[str, Any], now: datetime | None = None) -> Group:
    """The steps table under a bar of the candidate's share of traffic, then why the open
    step waits (or the outcome)."""
    bar = ProgressBar(total=100, completed=float(rollout["traffic_percent"]), width=50)
    caption = Text(f" candidate serves {rollout['traffic_percent']:g}% of traffic")
    parts: list[Any] = [Group(bar, caption), rollout_table(rollout)]
    parts.extend(live_step_lines(rollout, now))
    if rollout.get("outcome_reason"):
        parts.append(Text("outcome: ") + outcome_line(rollout))
    return Group(*parts)


def compare_table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"{result['method']} off-policy estimate on {result['n_samples']} held-out "
        f"decisions (effective sample size {result['effective_sample_size']:.0f})",
        title_justify="left",
    )
    for col in ("", "estimated reward", "95% low", "95% high"):
        table.add_column(col, justify="left" if not col else "right")
    for label, key in (
        (f"baseline {result['baseline_version']}", "baseline"),
        (f"candidate {result['candidate_version']}", "candidate"),
    ):
        est = result[key]
        warned = bool(est.get("warnings"))
        table.add_row(
            Text(label + (" (!)" if warned else ""), style="yellow" if warned else ""),
            _num(est["estimated_reward"]),
            _num(est["ci_low"]),
            _num(est["ci_high"]),
        )
    lift = result["lift"]
    relative = f" ({lift['relative']:+.1%})" if lift.get("relative") is not None else ""
    table.add_row(
        "lift",
        (f"{lift['absolute']:+.4f}{relative}" if lift["absolute"] is not None else ""),
        _num(lift["ci_low"]),
        _num(lift["ci_high"]),
    )
    snips = result.get("snips")
    if snips:
        table.add_row(
            Text("SNIPS lift (cross-check)", style="dim"),
            _num(snips["lift"]["absolute"]),
            _num(snips["lift"]["ci_low"]),
            _num(snips["lift"]["ci_high"]),
        )
    return table


def compare_warnings(result: dict[str, Any]) -> list[str]:
    """The API's warnings on the headline estimates (e.g. a value outside the reward range,
    and why), each with the side it is about; shown under the table, never left out."""
    out = []
    for key in ("baseline", "candidate"):
        for warning in (result.get(key) or {}).get("warnings") or []:
            out.append(f"{key} {result[f'{key}_version']}: {warning}")
    return out


def experiment_table(experiment: dict[str, Any]) -> Table:
    winner = experiment.get("winner")
    p = experiment.get("p_value")
    srm = experiment.get("srm_p_value")
    title = (
        f"experiment {experiment['experiment_id']} '{experiment['name']}' · "
        f"{experiment['state']} · winner {winner or 'none yet'}"
        + (f" · p={p:.2g}" if p is not None else "")
        + (f" · SRM p={srm:.2g}" if srm is not None else "")
    )
    table = Table(title=title, title_justify="left")
    for col in ("version", "traffic", "decisions", "success", "mean reward", "95% CI", "p95"):
        table.add_column(col, justify="left" if col == "version" else "right")
    for arm in experiment["variants"]:
        ci = (
            f"{arm['ci_low']:.3f}..{arm['ci_high']:.3f}"
            if arm.get("ci_low") is not None and arm.get("ci_high") is not None
            else ""
        )
        style = "bold green" if arm["version"] == winner else ""
        table.add_row(
            Text(arm["version"], style=style),
            f"{arm['traffic_percent']:g}%",
            str(arm["decisions"]),
            _pct(arm.get("success_rate")),
            _num(arm.get("mean_reward"), 3),
            ci,
            _ms(arm.get("latency_p95_ms")),
        )
    return table


def job_line(job: dict[str, Any]) -> str:
    return (
        f"{job['job_id']} · {job['status']} · trigger {job['trigger']} · "
        f"interactions {job.get('interactions_used') or '-'} · "
        f"candidate {job.get('candidate_version') or '-'}"
        + (f" · error: {job['error']}" if job.get("error") else "")
    )
