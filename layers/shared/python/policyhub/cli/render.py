"""Rich renderings of API objects, shared by the CLI and `make demo`."""

from __future__ import annotations

from typing import Any

from rich.console import Group
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


def rollout_view(rollout: dict[str, Any]) -> Group:
    """The steps table under a bar of the candidate's share of traffic."""
    bar = ProgressBar(total=100, completed=float(rollout["traffic_percent"]), width=50)
    caption = Text(f" candidate serves {rollout['traffic_percent']:g}% of traffic")
    parts: list[Any] = [Group(bar, caption), rollout_table(rollout)]
    if rollout.get("outcome_reason"):
        parts.append(Text(f"outcome: {rollout['outcome_reason']}"))
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
        table.add_row(
            label, _num(est["estimated_reward"]), _num(est["ci_low"]), _num(est["ci_high"])
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
