"""`make demo`: the whole policy lifecycle for tenant `demo`, on one machine, over HTTP.

The embedded stack starts in this process on free ports; everything after that goes through
the HTTP API with the typed client (`policyhub.client`), driven by simulated users
(`demo_traffic`). The only other entry point used is the training schedule's handler, invoked
once the way EventBridge would. Every stage checks what it should have done; any miss makes
the run exit non-zero, so CI can run it.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from infra.local.demo_report import DemoReport, RolloutRun, StageResult, write_report
from infra.local.demo_traffic import (
    DEMO_SIMULATOR,
    SimulatedUsers,
    plain_users,
    rollout_users,
    success_rate,
)
from infra.local.embedded_aws import free_port
from policyhub.cli.render import (
    compare_table,
    compare_warnings,
    end_live,
    experiment_table,
    job_line,
    outcome_line,
    outcome_reason,
    rollout_is_over,
    rollout_view,
)
from policyhub.client import ApiError, PolicyHubClient
from policyhub.ml.onnx_models import linear_policy
from policyhub.ml.scorers import retrieval_scorer
from policyhub.ml.simulator import BanditSimulator
from policyhub.ml.trainer import train_policy

AGENT = "demo_agent"
DAY0_VISITS = 500
MIN_NEW_INTERACTIONS = 450
COMPARE_MIN_SAMPLES = 100
VISITS_PER_LOOK = 24
EXPERIMENT_MAX_VISITS = 700
# Generous: on an idle 2-core machine the good rollout takes about a minute; a busy CI runner
# can take several times that without anything being wrong.
ROLLOUT_TIMEOUT = 300.0

# Compressed time (API.md allows `pipeline` overrides): seconds instead of hours, tens of
# samples instead of hundreds. The statistics are the production ones; only the budgets shrink.
PIPELINE: dict[str, Any] = {
    "shadow_seconds": 2,
    "shadow_min_decisions": 40,
    "canary_steps": [5, 10, 25, 50, 100],
    "step_seconds": 2,
    "min_samples_per_step": 40,
    "min_success_rate": 0.6,
    "max_latency_increase": 10.0,
    "max_step_seconds": 90,
    "post_promotion_seconds": 2,
}
COMPRESSED = [
    "pipeline: shadow 2 s / 40 decisions, canary steps 2 s with at least 40 samples per "
    "variant, post-promotion watch 2 s, 90 s deadline per step (defaults: 3600 s / 500, "
    "900 s / 200, 3600 s, 7200 s)",
    "min_success_rate 0.6 (default 0.95): the simulated users succeed about 58 % of the time "
    "with the retrieval order, about 82 % with the learned policy and under 20 % with the "
    "broken one; 0.6 asks a candidate to prove it beats today's order",
    "max_latency_increase 10 (default 0.20, 10 is the most the API accepts): the API runs in "
    "its own process here, but this machine's rank latency still has a tail (p93 ~2.4 ms, p97 "
    "~3.9 ms around a ~1.2 ms median: bench/data/local_rank_latency_ms.txt), so a p95 is "
    "known to about +-30 % on a thousand samples and proving one within +20 % takes thousands "
    "of samples per step (decisions 098 and 100); the trained v1.0.1 (polynomial features and "
    "a logistic regression) also has ~1.3x the p95 of v1.0.0's one matrix product. Locally "
    "the latency rule only catches gross regressions (the e2e tests show one: a candidate "
    "~75 ms slower is rolled back at 5 %); its statistics are unchanged",
    "rollout traffic: simulated users are picked by routing bucket, alternately from the "
    "canary's first 5 % and from the baseline's half, so every step sees both variants equally "
    "(at 5 % of real users a step would need 20 times the traffic)",
    f"training: the 6-hourly schedule is fired once by hand and needs "
    f"{MIN_NEW_INTERACTIONS} new interactions (POLICYHUB_MIN_NEW_INTERACTIONS; default 1000)",
    f"compare: min_samples {COMPARE_MIN_SAMPLES} held-out decisions (default 500)",
]


STACK_ENVIRONMENT = {
    "POLICYHUB_MIN_NEW_INTERACTIONS": str(MIN_NEW_INTERACTIONS),
    # A serving-view refresh is a DynamoDB read inside a rank call; every 3 s keeps those
    # out of the p95 while a new rollout step still reaches serving within seconds.
    "POLICYHUB_POINTER_TTL_SECONDS": "3",
    "POLICYHUB_LOCAL_TICK_SECONDS": "1",
}


class StageFailedError(Exception):
    """A stage did not do what the story says it should."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise StageFailedError(message)




class Demo:
    def __init__(
        self,
        client: PolicyHubClient,
        users: SimulatedUsers,
        console: Console,
        run_schedule: Callable[[], dict[str, Any]],
    ) -> None:
        self.client = client
        self.users = users
        self.console = console
        self.run_schedule = run_schedule
        self.report = DemoReport(compressed=list(COMPRESSED))
        self.facts: dict[str, Any] = {}

    # ---- plumbing ------------------------------------------------------------------------------
    @contextmanager
    def stage(self, name: str, what: str) -> Iterator[list[str]]:
        self.console.rule(f"[bold]{name}")
        self.console.print(what, style="dim")
        summary: list[str] = []
        started = time.perf_counter()
        ok = False
        try:
            yield summary
            ok = True
        finally:
            seconds = time.perf_counter() - started
            text = "; ".join(summary)
            self.report.stages.append(StageResult(name, ok, seconds, text))
            mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
            self.console.print(f"{mark} {name} ({seconds:.1f} s) {text}")

    def wait_for_logs(self) -> None:
        """The local log sink writes to S3 every 0.5 s; readers see what was written."""
        time.sleep(1.2)

    def watch_rollout(
        self, title: str, expected: str, rollout_id: str, timeout: float = ROLLOUT_TIMEOUT
    ) -> dict[str, Any]:
        """Send users and show the rollout live until it is over; returns its final record.

        The last record read goes into the report whatever happens, so a failed run shows how
        far the rollout got.
        """
        users = rollout_users(rollout_id)
        deadline = time.monotonic() + timeout
        rollout = self.client.rollout(rollout_id, AGENT)
        live = Live(
            rollout_view(rollout),
            console=self.console,
            refresh_per_second=4,
            transient=False,
            auto_refresh=self.console.is_terminal,
        )
        seen: tuple[Any, ...] = ()
        try:
            with live:
                while not rollout_is_over(rollout):
                    check(
                        time.monotonic() < deadline,
                        f"rollout {rollout_id} still {rollout['state']} at step "
                        f"{rollout['step_index']} after {timeout:g} s",
                    )
                    self.users.visit(itertools.islice(users, VISITS_PER_LOOK))
                    rollout = self.client.rollout(rollout_id, AGENT)
                    live.update(rollout_view(rollout))
                    now = (rollout["state"], rollout["step_index"], rollout["traffic_percent"])
                    if not self.console.is_terminal and now != seen:
                        seen = now
                        self.console.print(
                            f"  {rollout['state']} · step {rollout['step_index']} · "
                            f"{rollout['traffic_percent']:g}% · {self.users.visits} visits so far"
                        )
        finally:
            end_live(self.console)
            self.report.rollouts.append(RolloutRun(title, rollout, PIPELINE, expected))
        return rollout

    def show_rollback(self, rollout: dict[str, Any]) -> None:
        """How a rollout that rolled back ended: its outcome (the state said once) and the
        reasons of its last step, printed as text (never read as Rich markup)."""
        self.console.print(outcome_line(rollout))
        for reason in rollout["steps"][-1]["reasons"]:
            self.console.print(Text(f"  · {reason}"))

    # ---- the story -------------------------------------------------------------------------
    def day_zero(self) -> None:
        with self.stage(
            "1. Day 0: a fresh agent with no policy",
            f"Agent {AGENT!r} has no policy yet: /v1/rank answers in retrieval order with "
            "exploration and logs every decision with its propensity, so the first training has "
            "data.",
        ) as summary:
            status = self.client.status(AGENT)
            check(status["production"] is None, f"{AGENT} already has production: {status}")
            visits = self.users.visit(itertools.islice(plain_users("day0"), DAY0_VISITS))
            variants = {(v.variant, v.policy_version) for v in visits}
            check(variants == {("retrieval", None)}, f"day 0 was served by {variants}")
            rate = success_rate(visits) or 0.0
            self.facts["day0_success"] = rate
            summary.append(
                f"{len(visits)} users served in retrieval order; success rate {rate:.1%}"
            )

    def baseline(self) -> None:
        with self.stage(
            "2. The retrieval order becomes v1.0.0",
            "The platform team registers today's behaviour as an ONNX policy that scores by the "
            "retrieval score (POST /v1/policies), and promotes it immediately: the first version "
            "has nothing to canary against. Serving does not change; candidates now have a "
            "baseline and production has a rollback target.",
        ) as summary:
            created = self._register(retrieval_order_weights(), "the retrieval order, as a policy")
            out = self.client.promote(
                created["version"], AGENT, "immediate", "make the retrieval order explicit"
            )
            status = self.client.status(AGENT)
            check(
                status["production"]["version"] == created["version"] == "v1.0.0",
                f"production after the first promote: {status['production']}",
            )
            summary.append(f"{out['version']} in production since {out['promoted_at']}")

    def training(self) -> None:
        with self.stage(
            "3. The training schedule fires",
            "The 6-hourly EventBridge schedule (functions/training_schedule) starts a job for "
            "every agent with enough new interactions; the job joins decisions with feedback, "
            "trains a reward model, exports ONNX and registers a candidate.",
        ) as summary:
            self.wait_for_logs()
            sweep = self.run_schedule()
            mine = [s for s in sweep["started"] if s["agent_type"] == AGENT]
            check(len(mine) == 1, f"the schedule did not start {AGENT}'s job: {sweep}")
            job = self._wait_for_job(mine[0]["job_id"])
            self.console.print(job_line(job))
            check(job["status"] == "succeeded", f"training failed: {job}")
            version = self.client.policy(job["candidate_version"], AGENT)
            check(version["status"] == "candidate", f"trained version is {version['status']}")
            check(version["parent_version"] == "v1.0.0", f"lineage: {version['parent_version']}")
            offline = version["metrics"].get("offline", {})
            self.console.print(
                {k: offline[k] for k in sorted(offline) if not k.startswith("skipped_")}
            )
            self.facts["candidate"] = version["version"]
            summary.append(
                f"job {job['job_id']} trained {version['version']} on "
                f"{job['interactions_used']} interactions"
            )

    def compare(self) -> None:
        candidate = self.facts["candidate"]
        with self.stage(
            "4. Compare offline",
            f"POST /v1/policies/compare: v1.0.0 vs {candidate} by off-policy evaluation on the "
            "held-out part of the logs (doubly robust, SNIPS beside it).",
        ) as summary:
            result = self.client.compare(
                "v1.0.0", candidate, AGENT, min_samples=COMPARE_MIN_SAMPLES
            )
            self.report.compare = result
            self.console.print(compare_table(result))
            for warning in compare_warnings(result):
                self.console.print(Text(f"  ! {warning}", style="yellow"))
            for reason in result["reasons"]:
                self.console.print(Text(f"  · {reason}", style="dim"))
            for side in ("baseline", "candidate"):
                est = result[side]
                check(
                    est["estimated_reward"] is not None
                    and est["ci_low"] <= est["estimated_reward"] <= est["ci_high"],
                    f"{side} estimate without a sound interval: {est}",
                )
            # No check on the lift's sign: on ~100 held-out decisions (an effective sample near
            # 17) it is noise-level, and it came out -0.03 in one e2e run (decision ids, so the
            # logs and the split, differ every run). The live rollout below decides.
            summary.append(
                f"lift {result['lift']['absolute']:+.3f} "
                f"[{result['lift']['ci_low']:+.3f}, {result['lift']['ci_high']:+.3f}], "
                f"recommendation {result['recommendation']}"
            )
            if result["recommendation"] != "promote" or result["lift"]["absolute"] <= 0:
                self.console.print(
                    "The offline evidence is thin (a few hundred logged decisions): this is "
                    "what the safe pipeline is for. It checks the candidate on live traffic "
                    "and rolls it back on its own if users fare worse.",
                    style="italic",
                )

    def safe_promote(self) -> None:
        candidate = self.facts["candidate"]
        with self.stage(
            f"5. Safe promote {candidate}",
            "POST /v1/policies/promote (strategy safe): shadow (the candidate scores every "
            "request, production serves), canary 5 → 10 → 25 → 50 → 100 %, a post-promotion "
            "watch; each step judged on success rate and p95 latency against production.",
        ) as summary:
            rollout = self.client.promote(
                candidate, AGENT, "safe", "better offline and trained on fresh logs", PIPELINE
            )
            final = self.watch_rollout(
                "a good candidate goes to production",
                "healthy at every step, then production",
                rollout["rollout_id"],
            )
            check(final["state"] == "promoted", f"not promoted: {final['outcome_reason']}")
            stages = [(s["stage"], s["traffic_percent"]) for s in final["steps"]][:6]
            check(
                stages == [("shadow", 0), *(("canary", p) for p in (5, 10, 25, 50, 100))],
                f"steps were {stages}",
            )
            check(
                all(s["verdict"] == "healthy" for s in final["steps"]),
                "a step was not healthy",
            )
            prod = self.client.status(AGENT)["production"]["version"]
            check(prod == candidate, f"production is {prod}")
            summary.append(f"{candidate} in production after {len(final['steps'])} healthy steps")

    def regression(self) -> None:
        with self.stage(
            "6. A regressing candidate is rolled back automatically",
            "A data scientist trains a model offline on an export of the logs and registers it "
            "(POST /v1/policies). The export had success and failure swapped, so the model "
            "learned to put the worst item on top. It is a valid ONNX scorer; only users can "
            "tell.",
        ) as summary:
            production = self.client.status(AGENT)["production"]["version"]
            bad = self.client.register(
                base64.b64encode(label_flipped_policy()).decode(),
                DEMO_SIMULATOR.context_dim,
                DEMO_SIMULATOR.item_dim,
                AGENT,
                "trained offline on an export with swapped labels",
            )
            rollout = self.client.promote(
                bad["version"], AGENT, "safe", "new feature pipeline", PIPELINE
            )
            final = self.watch_rollout(
                "a regressing candidate is rolled back",
                "unhealthy on success rate at its first canary step",
                rollout["rollout_id"],
            )
            check(final["state"] == "rolled_back", f"state {final['state']}")
            last = final["steps"][-1]
            check(last["verdict"] == "unhealthy", f"last step verdict {last['verdict']}")
            self.show_rollback(final)
            status = self.client.status(AGENT)
            check(
                status["production"]["version"] == production and status["rollout"] is None,
                f"production after the rollback: {status}",
            )
            check(
                self.client.policy(bad["version"], AGENT)["status"] == "rolled_back",
                "the bad version is not marked rolled_back",
            )
            audit = next(iter(self.client.audit(AGENT)))
            check(audit["action"] == "auto_rollback", f"latest audit event {audit['action']}")
            summary.append(
                f"{bad['version']} rolled back at {last['traffic_percent']:g}% "
                f"({outcome_reason(final)}); {production} kept serving"
            )

    def emergency_rollback(self) -> None:
        with self.stage(
            "7. Emergency manual rollback",
            "An on-call engineer suspects the new policy during an incident and rolls back to "
            "the previous production version at once (POST /v1/policies/rollback).",
        ) as summary:
            before = self.client.status(AGENT)
            previous = [p["version"] for p in before["previous"]]
            check("v1.0.0" in previous, f"v1.0.0 is not a rollback target: {previous}")
            out = self.client.rollback("v1.0.0", AGENT, "incident: suspected ranking regression")
            after = self.client.status(AGENT)
            check(after["production"]["version"] == "v1.0.0", f"production {after['production']}")
            check(out["previous_version"] == before["production"]["version"], f"{out}")
            audit = next(iter(self.client.audit(AGENT)))
            check(audit["action"] == "rollback", f"latest audit event {audit['action']}")
            summary.append(f"{out['previous_version']} → {out['version']} at {out['promoted_at']}")

    def experiment(self) -> None:
        candidate = self.facts["candidate"]
        with self.stage(
            "8. A/B experiment settles it",
            f"Was {candidate} really better? POST /v1/policies/experiments splits users 50/50 "
            f"between v1.0.0 and {candidate}; GET shows each arm with an interval, a winner only "
            "when Welch's test is significant with at least 100 outcomes per arm, and a "
            "sample-ratio check.",
        ) as summary:
            exp = self.client.start_experiment(
                f"v1.0.0 vs {candidate}", [("v1.0.0", 50), (candidate, 50)], AGENT
            )
            users = plain_users("ab")
            # No winner is named below 100 outcomes per arm: send that much before looking.
            batch, sent = 220, 0
            while True:
                self.users.visit(itertools.islice(users, batch))
                sent += batch
                exp = self.client.experiment(exp["experiment_id"], AGENT)
                if exp["winner"] or sent >= EXPERIMENT_MAX_VISITS:
                    break
                batch = 80
            self.console.print(experiment_table(exp))
            stopped = self.client.stop_experiment(exp["experiment_id"], AGENT, "winner found")
            self.report.experiment = stopped
            check(stopped["state"] == "stopped", f"experiment {stopped['state']}")
            check(stopped["winner"] == candidate, f"winner {stopped['winner']} after {sent} users")
            check((stopped["srm_p_value"] or 0) > 0.001, f"sample ratio mismatch: {stopped}")
            check(self.client.status(AGENT)["experiment"] is None, "experiment still active")
            summary.append(
                f"winner {stopped['winner']} (p={stopped['p_value']:.2g}) after {sent} users"
            )

    # ---- helpers -------------------------------------------------------------------------------
    def _register(self, weights: list[float], notes: str) -> dict[str, Any]:
        artifact = base64.b64encode(linear_policy(weights, name="demo_linear")).decode()
        return self.client.register(
            artifact, DEMO_SIMULATOR.context_dim, DEMO_SIMULATOR.item_dim, AGENT, notes
        )

    def _wait_for_job(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.console.status(f"training job {job_id}…"):
            while True:
                job = self.client.training_job(job_id)
                if job["status"] in ("succeeded", "failed"):
                    return job
                check(time.monotonic() < deadline, f"job {job_id} still {job['status']}")
                time.sleep(0.3)


def label_flipped_policy(n: int = 1000) -> bytes:
    """A policy trained by `policyhub.ml.trainer` on simulated logs whose rewards are swapped."""
    simulator = BanditSimulator(DEMO_SIMULATOR)
    data = simulator.log_dataset(n, retrieval_scorer, seed=424242)
    return train_policy(dataclasses.replace(data, reward=1.0 - data.reward)).artifact


def retrieval_order_weights() -> list[float]:
    """A linear scorer over a feature row that looks only at the retrieval score (the last)."""
    return [0.0] * (DEMO_SIMULATOR.feature_dim - 1) + [1.0]


def summary_table(report: DemoReport) -> Table:
    table = Table(title="policyhub demo", title_justify="left")
    for col in ("stage", "result", "time", "what happened"):
        table.add_column(col)
    for s in report.stages:
        table.add_row(
            s.name,
            "[green]ok[/green]" if s.ok else "[red]FAILED[/red]",
            f"{s.seconds:.1f} s",
            s.summary,
        )
    return table


def run(console: Console | None = None, report_root: Path | None = None) -> tuple[bool, Path]:
    """Play the whole story; returns (every stage did what it should, report path)."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=140)
    started = time.perf_counter()
    for name, value in STACK_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    from infra.local.demo_stack import start_demo_stack
    from infra.local.events import LambdaContext
    from infra.local.functions import load_handler

    api_port = int(os.environ.get("POLICYHUB_PORT") or free_port())
    aws_port = int(os.environ.get("POLICYHUB_AWS_PORT") or free_port())
    with tempfile.TemporaryDirectory(prefix="policyhub-demo-") as local:
        with console.status("starting the embedded stack…"):
            stack = start_demo_stack(api_port, aws_port, Path(local))
        api_url = stack.api_url
        console.print(
            Panel.fit(
                f"policyhub demo · API {api_url} · embedded AWS {stack.aws_endpoint}\n"
                f"tenant {stack.demo.tenant_id} · agent {AGENT} · simulated users from "
                "policyhub.ml.simulator (outcomes drawn from each shown item's true success "
                "probability)",
                title="make demo",
            )
        )

        def schedule() -> dict[str, Any]:
            event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
            return load_handler("training_schedule")(event, LambdaContext("training_schedule"))

        key = stack.demo.admin_key
        users = SimulatedUsers(lambda: PolicyHubClient(api_url, key), AGENT)
        demo = Demo(PolicyHubClient(api_url, key), users, console, schedule)
        ok = True
        try:
            for step in (
                demo.day_zero,
                demo.baseline,
                demo.training,
                demo.compare,
                demo.safe_promote,
                demo.regression,
                demo.emergency_rollback,
                demo.experiment,
            ):
                step()
        except (StageFailedError, ApiError) as exc:
            ok = False
            console.print(f"[bold red]stage failed:[/bold red] {exc}")
        finally:
            users.close()
            stack.stop()
    demo.report.wall_seconds = time.perf_counter() - started
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    root = report_root or Path(os.environ.get("POLICYHUB_REPORT_DIR", "reports"))
    path = write_report(demo.report, root / f"demo-{stamp}")
    console.rule("[bold]Summary")
    console.print(summary_table(demo.report))
    console.print("What was compressed to fit in minutes:", style="bold")
    for note in COMPRESSED:
        console.print(f"  · {note}")
    console.print(f"Whole run {demo.report.wall_seconds:.1f} s · report: [bold]{path.resolve()}")
    if not ok:
        console.print("[bold red]the demo did not do what it should (see above)")
    return ok, path


def main() -> int:
    ok, _ = run()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
