"""Monte-Carlo check of the rollout judgement: simulated traffic through the real controller.

Each simulated rollout runs the real `step`/`apply` with the default pipeline (safe strategy:
shadow, canary 5/10/25/50/100 %, post-promotion watch) and a fake clock. Every tick, Poisson
traffic is split between the variants by the current traffic percent; each decision gets
feedback (success ~ Bernoulli) and a log-normal latency. The health of the current step's
window (cumulative since the step started) is handed to `step` as a health reader would.
p95/p50 come from a fine log-spaced latency histogram (1 % wide bins), like a metrics backend's
percentile sketch, so a tick costs the same whatever the window size.

    python -m bench.canary_sim --rollouts 1000 --seed 7
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from policyhub.domain.health import HealthWindow, VariantHealth
from policyhub.domain.rollout import (
    PipelineConfig,
    Rollout,
    RolloutState,
    RolloutStep,
    RolloutStrategy,
    Stage,
    Verdict,
    start_rollout,
)
from policyhub.services.rollout_controller import apply, step

START = datetime(2026, 11, 1, tzinfo=UTC)
_LOG_MIN_MS, _LOG_MAX_MS, _BINS = math.log(1.0), math.log(20_000.0), 1000
_BIN_WIDTH = (_LOG_MAX_MS - _LOG_MIN_MS) / _BINS
_CENTRES_MS = np.exp(_LOG_MIN_MS + _BIN_WIDTH * (np.arange(_BINS) + 0.5))


@dataclass(frozen=True)
class Variant:
    success_rate: float
    latency_median_ms: float
    latency_sigma: float


@dataclass(frozen=True)
class Scenario:
    name: str
    candidate: Variant
    should_roll_back: bool


PRODUCTION = Variant(success_rate=0.97, latency_median_ms=40.0, latency_sigma=0.5)
SCENARIOS = (
    Scenario("equal to production", PRODUCTION, should_roll_back=False),
    Scenario("success 10 points lower (87 %)",
             Variant(0.87, PRODUCTION.latency_median_ms, PRODUCTION.latency_sigma),
             should_roll_back=True),
    Scenario("p95 latency 50 % higher",
             Variant(PRODUCTION.success_rate, PRODUCTION.latency_median_ms * 1.5,
                     PRODUCTION.latency_sigma),
             should_roll_back=True),
)


@dataclass
class _Window:
    """What a health reader would aggregate for one variant since the step started."""

    requests: int = 0
    successes: int = 0
    latency_counts: np.ndarray = field(default_factory=lambda: np.zeros(_BINS, np.int64))

    def add(self, rng: np.random.Generator, variant: Variant, n: int) -> None:
        if n == 0:
            return
        self.requests += n
        self.successes += int(rng.binomial(n, variant.success_rate))
        logs = rng.normal(math.log(variant.latency_median_ms), variant.latency_sigma, n)
        bins = ((logs - _LOG_MIN_MS) / _BIN_WIDTH).astype(np.intp)
        np.clip(bins, 0, _BINS - 1, out=bins)
        self.latency_counts += np.bincount(bins, minlength=_BINS)

    def health(self) -> VariantHealth:
        p50 = p95 = None
        if self.requests:
            ranks = np.searchsorted(np.cumsum(self.latency_counts),
                                    (0.5 * self.requests, 0.95 * self.requests))
            p50, p95 = (float(_CENTRES_MS[min(int(i), _BINS - 1)]) for i in ranks)
        return VariantHealth(requests=self.requests, feedback_successes=self.successes,
                             feedback_failures=self.requests - self.successes,
                             latency_p95_ms=p95, latency_p50_ms=p50)


@dataclass(frozen=True)
class RolloutResult:
    rolled_back: bool
    failed_stage: str | None
    """"shadow", "canary 5 %", ..., "post_promotion" for a rollback; None otherwise."""
    canary_steps_entered: int
    cause: str | None
    """Why it rolled back: a metric found unhealthy, or inconclusive at the deadline."""
    seconds: float
    seconds_to_promotion: float | None
    ticks: int


def simulate_rollout(rng: np.random.Generator, candidate: Variant, config: PipelineConfig,
                     requests_per_second: float, tick_seconds: float,
                     baseline: Variant = PRODUCTION) -> RolloutResult:
    rollout = start_rollout(rollout_id="sim", tenant_id="sim", agent_type="memory_manager",
                            candidate_version="v1.0.1", baseline_version="v1.0.0",
                            strategy=RolloutStrategy.SAFE, config=config, now=START)
    now, ticks = START, 0
    base, cand, shadow = _Window(), _Window(), 0
    while not rollout.is_terminal:
        now += timedelta(seconds=tick_seconds)
        ticks += 1
        total = int(rng.poisson(requests_per_second * tick_seconds))
        stage = rollout.current_step.stage
        if stage is Stage.SHADOW:
            base.add(rng, baseline, total)
            shadow += total
            window = HealthWindow(rollout.step_started_at, now, base.health(),
                                  VariantHealth(requests=0, shadow_decisions=shadow))
        else:
            to_candidate = int(rng.binomial(total, rollout.traffic_percent / 100.0))
            cand.add(rng, candidate, to_candidate)
            base.add(rng, baseline, total - to_candidate)
            window = HealthWindow(rollout.step_started_at, now,
                                  base.health() if base.requests else None, cand.health())
        following = apply(rollout, step(rollout, window, now), now)
        if following.step_index != rollout.step_index:
            base, cand, shadow = _Window(), _Window(), 0
        rollout = following
    return _result(rollout, ticks)


def _result(rollout: Rollout, ticks: int) -> RolloutResult:
    assert rollout.ended_at is not None
    rolled_back = rollout.state is RolloutState.ROLLED_BACK
    last = rollout.current_step
    failed = cause = None
    if rolled_back:
        failed = (f"canary {last.traffic_percent} %" if last.stage is Stage.CANARY
                  else last.stage.value)
        cause = _cause(last)
    promoted = (None if rollout.promoted_at is None
                else (rollout.promoted_at - rollout.started_at).total_seconds())
    return RolloutResult(
        rolled_back=rolled_back, failed_stage=failed,
        canary_steps_entered=sum(s.stage is Stage.CANARY for s in rollout.steps),
        cause=cause,
        seconds=(rollout.ended_at - rollout.started_at).total_seconds(),
        seconds_to_promotion=promoted, ticks=ticks)


def _cause(last: RolloutStep) -> str:
    if last.verdict is not Verdict.UNHEALTHY:
        return "inconclusive at deadline"
    text = " ".join(last.reasons)
    found = [metric for metric, marker in (("success rate", "confidently below the threshold"),
                                            ("p95 latency", "confidently above the limit"))
             if marker in text]
    return "unhealthy " + "+".join(found) if found else "unhealthy (other)"


@dataclass(frozen=True)
class ScenarioReport:
    scenario: Scenario
    results: tuple[RolloutResult, ...]

    @property
    def rollback_rate(self) -> float:
        return sum(r.rolled_back for r in self.results) / len(self.results)

    def rolled_back_by_canary_step(self, k: int) -> float:
        """Share rolled back in shadow or within the first `k` canary steps."""
        early = sum(r.rolled_back and r.canary_steps_entered <= k for r in self.results)
        return early / len(self.results)

    def lines(self) -> list[str]:
        n = len(self.results)
        hours = np.array([r.seconds for r in self.results]) / 3600.0
        where = Counter(f"{r.failed_stage} ({r.cause})" for r in self.results if r.rolled_back)
        out = [f"{self.scenario.name}: {n} rollouts, rolled back {self.rollback_rate:.1%} "
               f"(by the 2nd canary step {self.rolled_back_by_canary_step(2):.1%})",
               f"  rollout length h: median {np.median(hours):.2f}, p95 "
               f"{np.percentile(hours, 95):.2f}, max {hours.max():.2f}; "
               f"canary steps entered: mean "
               f"{np.mean([r.canary_steps_entered for r in self.results]):.2f}"]
        promoted = [r.seconds_to_promotion for r in self.results
                    if r.seconds_to_promotion is not None]
        if promoted:
            out.append(f"  time to promotion h: median {np.median(promoted) / 3600:.2f}, "
                       f"p95 {np.percentile(promoted, 95) / 3600:.2f} ({len(promoted)} promoted)")
        if where:
            out.append("  rolled back in: " + ", ".join(f"{k} {v}" for k, v in
                                                        sorted(where.items(), key=str)))
        return out


_CHUNK = 25


def _run_chunk(candidate: Variant, count: int, seed: np.random.SeedSequence,
               config: PipelineConfig, requests_per_second: float,
               tick_seconds: float) -> list[RolloutResult]:
    rng = np.random.default_rng(seed)
    return [simulate_rollout(rng, candidate, config, requests_per_second, tick_seconds)
            for _ in range(count)]


def run_scenario(scenario: Scenario, rollouts: int, seed: int, requests_per_second: float,
                 tick_seconds: float, config: PipelineConfig | None = None,
                 workers: int = 1) -> ScenarioReport:
    """Rollouts run in chunks with their own spawned seeds, so the results depend on `seed`
    alone, not on how many worker processes share the chunks."""
    config = config or PipelineConfig()
    sizes = [min(_CHUNK, rollouts - start) for start in range(0, rollouts, _CHUNK)]
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    jobs = [(scenario.candidate, size, chunk_seed, config, requests_per_second, tick_seconds)
            for size, chunk_seed in zip(sizes, seeds, strict=True)]
    if workers <= 1:
        chunks = [_run_chunk(*job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            chunks = list(pool.map(_run_chunk, *zip(*jobs, strict=True)))
    return ScenarioReport(scenario, tuple(r for chunk in chunks for r in chunk))


def targets_met(reports: list[ScenarioReport]) -> list[tuple[str, bool]]:
    """The targets of the brief, on the three standard scenarios in SCENARIOS order."""
    equal, worse, slower = reports
    return [
        ("equal candidate rolled back in <= 1 %", equal.rollback_rate <= 0.01),
        ("87 % candidate rolled back in >= 95 % by its 2nd canary step",
         worse.rolled_back_by_canary_step(2) >= 0.95),
        ("+50 % p95 candidate rolled back in >= 95 %", slower.rollback_rate >= 0.95),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rps", type=float, default=10.0,
                        help="requests per second of the agent (all variants together)")
    parser.add_argument("--tick-seconds", type=float, default=60.0,
                        help="how often the workflow looks at the health")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    began = time.perf_counter()
    reports = []
    for i, scenario in enumerate(SCENARIOS):
        report = run_scenario(scenario, args.rollouts, args.seed + i, args.rps,
                              args.tick_seconds, workers=args.workers)
        reports.append(report)
        print("\n".join(report.lines()))
    print(f"default pipeline, {args.rps:g} requests/s, a look every {args.tick_seconds:g} s, "
          f"seed {args.seed}, {time.perf_counter() - began:.1f} s")
    failed = False
    for target, ok in targets_met(reports):
        print(f"[{'PASS' if ok else 'FAIL'}] {target}")
        failed |= not ok
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
