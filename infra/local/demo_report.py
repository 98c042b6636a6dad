"""The demo's report: one self-contained HTML file, its PNG charts and data.json beside it.

For each rollout: the candidate's share of traffic over time with where each verdict fell, the
success rate and the p95 latency of both variants at every step, and the steps in full. The
charts are drawn from the rollout records the API returned, nothing else.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

VERDICT_COLOURS = {"healthy": "#2e7d32", "unhealthy": "#c62828", "inconclusive": "#9e9e9e"}
BASELINE_COLOUR, CANDIDATE_COLOUR = "#1f77b4", "#ff7f0e"


@dataclass(frozen=True)
class RolloutRun:
    title: str
    rollout: dict[str, Any]
    pipeline: dict[str, Any]
    expected: str
    """What the story expects of it, in words."""


@dataclass
class StageResult:
    name: str
    ok: bool
    seconds: float
    summary: str


@dataclass
class DemoReport:
    stages: list[StageResult] = field(default_factory=list)
    rollouts: list[RolloutRun] = field(default_factory=list)
    compare: dict[str, Any] | None = None
    experiment: dict[str, Any] | None = None
    compressed: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def step_label(step: dict[str, Any]) -> str:
    if step["stage"] == "canary":
        return f"{step['traffic_percent']:g}%"
    return {"post_promotion": "watch"}.get(step["stage"], str(step["stage"]))


def traffic_chart(rollout: dict[str, Any]) -> Figure:
    """Candidate traffic % as a step function of seconds since the start, verdict markers."""
    start = _at(rollout["started_at"])
    fig, ax = plt.subplots(figsize=(8, 3.6))
    xs: list[float] = []
    ys: list[float] = []
    for index, step in enumerate(rollout["steps"]):
        begin = (_at(step["started_at"]) - start).total_seconds()
        end = (_at(step["ended_at"]) - start).total_seconds() if step["ended_at"] else begin
        xs += [begin, end]
        ys += [step["traffic_percent"]] * 2
        verdict = step.get("verdict")
        if step["ended_at"] and verdict:
            ax.scatter(
                [end],
                [step["traffic_percent"]],
                s=70,
                zorder=3,
                color=VERDICT_COLOURS.get(verdict, "black"),
                edgecolors="black",
            )
            # Alternate above/below the line so labels of close verdicts do not overlap.
            ax.annotate(
                f"{step_label(step)}: {verdict}",
                (end, step["traffic_percent"]),
                textcoords="offset points",
                xytext=(5, 8 if index % 2 == 0 else -14),
                fontsize=7,
            )
    if rollout.get("ended_at") and rollout["state"] in ("rolled_back", "aborted"):
        end = (_at(rollout["ended_at"]) - start).total_seconds()
        xs += [end]
        ys += [0]
        ax.axvline(end, color=VERDICT_COLOURS["unhealthy"], linestyle="--", linewidth=1)
        ax.annotate(
            rollout["state"].replace("_", " "),
            (end, 50),
            rotation=90,
            fontsize=8,
            color=VERDICT_COLOURS["unhealthy"],
            xytext=(3, 0),
            textcoords="offset points",
        )
    ax.plot(xs, ys, drawstyle="steps-post", color=CANDIDATE_COLOUR, linewidth=2)
    ax.set_ylim(-5, 110)
    ax.set_xlabel("seconds since the rollout started (compressed time)")
    ax.set_ylabel("candidate traffic %")
    ax.set_title(f"{rollout['candidate_version']}: traffic over time and verdicts")
    ax.grid(alpha=0.3)
    for verdict, colour in VERDICT_COLOURS.items():
        ax.scatter([], [], color=colour, edgecolors="black", label=verdict)
    _legend_below(ax)
    fig.tight_layout()
    return fig


def _legend_below(ax: Any) -> None:
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=4, fontsize=7, frameon=False)


def _bars(ax: Any, steps: Sequence[dict[str, Any]], metric: str, scale: float = 1.0) -> list[str]:
    labels = [step_label(s) for s in steps]
    positions = range(len(steps))
    for offset, variant, colour in (
        (-0.2, "baseline", BASELINE_COLOUR),
        (0.2, "candidate", CANDIDATE_COLOUR),
    ):
        values = [((s.get(variant) or {}).get(metric)) for s in steps]
        shown = [(p + offset, v * scale) for p, v in zip(positions, values, strict=True)
                 if v is not None]  # fmt: skip
        ax.bar([x for x, _ in shown], [h for _, h in shown], width=0.4, color=colour, label=variant)
        for p, value, step in zip(positions, values, steps, strict=True):
            if value is None:  # e.g. the candidate in shadow: it scores but never serves
                ax.annotate(
                    "n/a",
                    (p + offset, 0.02),
                    xycoords=ax.get_xaxis_transform(),
                    ha="center",
                    fontsize=6,
                )
                continue
            n = (step.get(variant) or {}).get("requests", 0)
            ax.annotate(
                f"n={n}",
                (p + offset, value * scale),
                ha="center",
                va="bottom",
                fontsize=6,
                xytext=(0, 2),
                textcoords="offset points",
            )
    ax.set_xticks(list(positions))
    ax.set_xticklabels(labels)
    for tick, step in zip(ax.get_xticklabels(), steps, strict=True):
        tick.set_color(VERDICT_COLOURS.get(step.get("verdict") or "", "black"))
    return labels


def success_chart(rollout: dict[str, Any], threshold: float) -> Figure:
    fig, ax = plt.subplots(figsize=(8, 3.6))
    _bars(ax, rollout["steps"], "success_rate", 100.0)
    ax.axhline(
        threshold * 100,
        color=VERDICT_COLOURS["unhealthy"],
        linestyle="--",
        linewidth=1,
        label=f"min_success_rate {threshold:g}",
    )
    ax.set_ylim(0, 110)
    return _finish_step_chart(fig, ax, "success rate %", "success rate")


def latency_chart(rollout: dict[str, Any], max_increase: float) -> Figure:
    fig, ax = plt.subplots(figsize=(8, 3.6))
    steps = rollout["steps"]
    _bars(ax, steps, "latency_p95_ms")
    limits = [
        ((s.get("baseline") or {}).get("latency_p95_ms") or float("nan")) * (1 + max_increase)
        for s in steps
    ]
    ax.scatter(
        range(len(steps)),
        limits,
        marker="_",
        s=600,
        color=VERDICT_COLOURS["unhealthy"],
        label=f"limit: baseline p95 x {1 + max_increase:g}",
        zorder=3,
    )
    ax.set_yscale("log")
    return _finish_step_chart(fig, ax, "p95 latency (ms, log scale)", "p95 latency")


def _finish_step_chart(fig: Figure, ax: Any, ylabel: str, metric: str) -> Figure:
    ax.set_ylabel(ylabel)
    ax.set_title(f"{metric} per variant per step (tick colour = step verdict)")
    _legend_below(ax)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def _save(fig: Figure, path: Path) -> str:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return base64.b64encode(path.read_bytes()).decode()


def _esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _fmt(x: Any, spec: str) -> str:
    return "" if x is None else format(x, spec)


def _steps_table(rollout: dict[str, Any]) -> str:
    rows = []
    for s in rollout["steps"]:
        b, c = s.get("baseline") or {}, s.get("candidate") or {}
        colour = VERDICT_COLOURS.get(s.get("verdict") or "", "#000")
        rows.append(
            "<tr>"
            f"<td>{_esc(step_label(s))}</td><td>{_esc(s['started_at'])}</td>"
            f"<td>{_esc(s['ended_at'])}</td>"
            f"<td style='color:{colour};font-weight:bold'>{_esc(s.get('verdict'))}</td>"
            f"<td>{_esc(b.get('requests'))}</td><td>{_fmt(b.get('success_rate'), '.3f')}</td>"
            f"<td>{_fmt(b.get('latency_p95_ms'), '.1f')}</td>"
            f"<td>{_esc(c.get('requests'))}</td><td>{_fmt(c.get('success_rate'), '.3f')}</td>"
            f"<td>{_fmt(c.get('latency_p95_ms'), '.1f')}</td>"
            f"<td class='reasons'>{'<br>'.join(_esc(r) for r in s.get('reasons') or [])}</td>"
            "</tr>"
        )
    head = (
        "<tr><th>step</th><th>started</th><th>ended</th><th>verdict</th>"
        "<th>baseline n</th><th>baseline success</th><th>baseline p95 ms</th>"
        "<th>candidate n</th><th>candidate success</th><th>candidate p95 ms</th>"
        "<th>reasons</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _img(b64: str, alt: str) -> str:
    return f"<img alt='{_esc(alt)}' src='data:image/png;base64,{b64}'>"


def write_report(report: DemoReport, directory: Path) -> Path:
    """Write `index.html` and the PNGs into `directory`; returns the HTML path."""
    directory.mkdir(parents=True, exist_ok=True)
    sections: list[str] = []
    stage_rows = "".join(
        f"<tr><td>{_esc(s.name)}</td><td style='color:"
        f"{VERDICT_COLOURS['healthy'] if s.ok else VERDICT_COLOURS['unhealthy']}'>"
        f"{'ok' if s.ok else 'FAILED'}</td><td>{s.seconds:.1f} s</td>"
        f"<td>{_esc(s.summary)}</td></tr>"
        for s in report.stages
    )
    sections.append(
        "<h2>Stages</h2><table><tr><th>stage</th><th>result</th><th>time</th>"
        f"<th>what happened</th></tr>{stage_rows}</table>"
        f"<p>Whole run: {report.wall_seconds:.1f} s.</p>"
        "<h3>What was compressed</h3><ul>"
        + "".join(f"<li>{_esc(c)}</li>" for c in report.compressed)
        + "</ul>"
    )
    for i, run in enumerate(report.rollouts, start=1):
        r = run.rollout
        stem = f"rollout{i}-{r['candidate_version']}"
        traffic = _save(traffic_chart(r), directory / f"{stem}-traffic.png")
        success = _save(
            success_chart(r, float(run.pipeline["min_success_rate"])),
            directory / f"{stem}-success.png",
        )
        latency = _save(
            latency_chart(r, float(run.pipeline["max_latency_increase"])),
            directory / f"{stem}-latency.png",
        )
        sections.append(
            f"<h2>Rollout {i}: {_esc(run.title)}</h2>"
            f"<p><b>{_esc(r['rollout_id'])}</b> · candidate {_esc(r['candidate_version'])} · "
            f"baseline {_esc(r['baseline_version'])} · strategy {_esc(r['strategy'])} · "
            f"final state <b>{_esc(r['state'])}</b> · started {_esc(r['started_at'])} · "
            f"ended {_esc(r['ended_at'])}</p>"
            f"<p>Expected: {_esc(run.expected)}. Outcome: {_esc(r.get('outcome_reason'))}</p>"
            f"<p>Pipeline overrides: <code>{_esc(json.dumps(run.pipeline))}</code></p>"
            + _img(traffic, "traffic over time")
            + _img(success, "success rate per step")
            + _img(latency, "p95 latency per step")
            + "<p>At 100 % and in the post-promotion watch no request is served by production, "
            "so their 'baseline' is production pooled over the healthy canary steps below "
            "100 % (docs/decisions/098).</p>" + _steps_table(r)
        )
    if report.compare:
        c = report.compare
        sections.append(
            "<h2>Off-policy compare</h2>"
            f"<p>{_esc(c['baseline_version'])} vs {_esc(c['candidate_version'])}: "
            f"{_esc(c['method'])} on {_esc(c['n_samples'])} held-out decisions, effective sample "
            f"size {_fmt(c['effective_sample_size'], '.1f')}; recommendation "
            f"<b>{_esc(c['recommendation'])}</b>.</p><table><tr><th></th><th>estimate</th>"
            "<th>95% low</th><th>95% high</th></tr>"
            + "".join(
                f"<tr><td>{name}</td><td>{_fmt(e.get(k1), '.4f')}</td>"
                f"<td>{_fmt(e.get('ci_low'), '.4f')}</td>"
                f"<td>{_fmt(e.get('ci_high'), '.4f')}</td></tr>"
                for name, e, k1 in (
                    ("baseline", c["baseline"], "estimated_reward"),
                    ("candidate", c["candidate"], "estimated_reward"),
                    ("lift", c["lift"], "absolute"),
                )
            )
            + "</table><ul>"
            + "".join(f"<li>{_esc(x)}</li>" for x in c.get("reasons") or [])
            + "</ul>"
        )
    if report.experiment:
        e = report.experiment
        rows = "".join(
            f"<tr><td>{_esc(a['version'])}</td><td>{_esc(a['traffic_percent'])}%</td>"
            f"<td>{_esc(a['decisions'])}</td><td>{_fmt(a.get('success_rate'), '.3f')}</td>"
            f"<td>{_fmt(a.get('ci_low'), '.3f')}..{_fmt(a.get('ci_high'), '.3f')}</td>"
            f"<td>{_fmt(a.get('latency_p95_ms'), '.1f')}</td></tr>"
            for a in e["variants"]
        )
        sections.append(
            f"<h2>A/B experiment: {_esc(e['name'])}</h2>"
            f"<p>winner <b>{_esc(e.get('winner'))}</b> · p-value {_fmt(e.get('p_value'), '.2g')} "
            f"· sample-ratio check p {_fmt(e.get('srm_p_value'), '.2g')} · {_esc(e['state'])}</p>"
            "<table><tr><th>version</th><th>traffic</th><th>decisions</th><th>success</th>"
            f"<th>95% CI of mean reward</th><th>p95 ms</th></tr>{rows}</table>"
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>policyhub demo report</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}"
        "td.reasons{font-size:11px;max-width:420px}img{display:block;margin:1em 0;"
        "max-width:100%}</style></head><body><h1>policyhub demo report</h1>"
        + "".join(sections)
        + "</body></html>"
    )
    path = directory / "index.html"
    path.write_text(page)
    (directory / "data.json").write_text(json.dumps(_data(report), indent=1))
    return path


def _data(report: DemoReport) -> dict[str, Any]:
    """What the charts were drawn from, as the API returned it."""
    return {
        "stages": [vars(s) for s in report.stages],
        "rollouts": [vars(r) for r in report.rollouts],
        "compare": report.compare,
        "experiment": report.experiment,
        "compressed": report.compressed,
        "wall_seconds": report.wall_seconds,
    }
