"""The health checks hold their error rates under repeated looks and find real regressions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policyhub.domain import canary_statistics as stats
from policyhub.domain.canary_statistics import (
    LatencyEvidence,
    latency_ratio_check,
    mixture_boundary,
    rollback_alpha,
    success_rate_check,
)
from policyhub.domain.rollout import PipelineConfig, Verdict

LOOKS = range(50, 2001, 25)


def _ever(verdict: Verdict, paths: np.ndarray, threshold: float, alpha: float,
          looks: range = LOOKS, advance_alpha: float | None = None,
          first_verdict_only: bool = False) -> float:
    """Share of outcome paths judged `verdict` at some look (every 25 outcomes); with
    `first_verdict_only` a path stops at its first verdict, as a rollout step does."""
    hits = 0
    for path in paths:
        successes = np.cumsum(path)
        for n in looks:
            got = success_rate_check(int(successes[n - 1]), n, threshold, rollback_alpha=alpha,
                                     advance_alpha=alpha if advance_alpha is None
                                     else advance_alpha).verdict
            if got is verdict:
                hits += 1
                break
            if first_verdict_only and got is not Verdict.INCONCLUSIVE:
                break
    return hits / len(paths)


def test_a_rate_exactly_at_the_threshold_is_rarely_called_unhealthy_despite_many_looks() -> None:
    paths = np.random.default_rng(1).random((300, 2000)) < 0.95
    assert _ever(Verdict.UNHEALTHY, paths, 0.95, alpha=0.05) <= 0.05
    assert all(success_rate_check(int(p.sum()), 2000, 0.95, rollback_alpha=0.05).verdict
               is not Verdict.INCONCLUSIVE for p in paths[:20])


def test_a_rate_exactly_at_the_threshold_is_rarely_proven_healthy_before_the_planned_outcomes(
) -> None:
    planned = stats.planned_outcomes(0.95, 0.05)
    paths = np.random.default_rng(2).random((300, planned - 1)) < 0.95
    assert _ever(Verdict.HEALTHY, paths, 0.95, alpha=0.05,
                 looks=range(50, planned, 25)) <= 0.05


def test_a_rate_at_the_threshold_not_shown_below_it_is_healthy_at_the_planned_outcomes() -> None:
    alpha = rollback_alpha(PipelineConfig())
    planned = stats.planned_outcomes(0.95, alpha)
    successes = round(0.95 * planned)
    before = success_rate_check(successes - 1, planned - 1, 0.95, rollback_alpha=alpha)
    at_plan = success_rate_check(successes, planned, 0.95, rollback_alpha=alpha)
    assert before.verdict is Verdict.INCONCLUSIVE and "of the" in before.reason
    assert at_plan.verdict is Verdict.HEALTHY and "planned" in at_plan.reason
    assert at_plan.information is not None and at_plan.information >= 1.0


def test_half_the_thresholds_odds_is_rolled_back_by_the_planned_outcomes_with_the_planned_power(
) -> None:
    alpha = rollback_alpha(PipelineConfig())
    planned = stats.planned_outcomes(0.95, alpha)
    rate = stats.success_alternative(0.95)
    paths = np.random.default_rng(5).random((400, planned)) < rate
    caught = _ever(Verdict.UNHEALTHY, paths, 0.95, alpha=alpha,
                   looks=range(50, planned + 1, 25), advance_alpha=0.05,
                   first_verdict_only=True)
    assert caught >= stats.PLANNED_POWER


def test_the_planned_outcomes_grow_with_the_threshold_and_a_smaller_alpha() -> None:
    alpha = rollback_alpha(PipelineConfig())
    by_threshold = [stats.planned_outcomes(t, alpha) for t in (0.5, 0.8, 0.95, 0.99)]
    assert by_threshold == sorted(by_threshold) and len(set(by_threshold)) == 4
    assert stats.planned_outcomes(0.95, alpha / 10) > stats.planned_outcomes(0.95, alpha)


def test_a_naive_interval_checked_at_every_look_would_not_hold_its_alpha() -> None:
    """Why the checks are confidence sequences: a 95 % one-sided normal interval looked at
    79 times calls a rate at the threshold 'below it' far more often than 5 %."""
    paths = np.random.default_rng(1).random((300, 2000)) < 0.95
    cumulative = np.cumsum(paths, axis=1)
    n = np.array(LOOKS)
    rate = cumulative[:, n - 1] / n
    upper = rate + 1.645 * np.sqrt(0.95 * 0.05 / n)
    assert np.mean((upper < 0.95).any(axis=1)) > 0.15


def test_an_87_percent_rate_is_unhealthy_at_the_default_step_size() -> None:
    check = success_rate_check(174, 200, 0.95, rollback_alpha=rollback_alpha(PipelineConfig()))
    assert check.verdict is Verdict.UNHEALTHY
    assert check.upper is not None and check.upper < 0.95


def test_a_97_percent_rate_needs_more_than_200_outcomes_to_be_called_healthy() -> None:
    # ~750 outcomes prove 97 % >= 95 %; the planned ~1,000 conclude it anyway.
    alpha = rollback_alpha(PipelineConfig())
    assert success_rate_check(194, 200, 0.95, rollback_alpha=alpha).verdict is (
        Verdict.INCONCLUSIVE)
    assert success_rate_check(1455, 1500, 0.95, rollback_alpha=alpha).verdict is Verdict.HEALTHY


def test_the_rollback_alpha_splits_one_percent_over_metrics_and_stages() -> None:
    assert rollback_alpha(PipelineConfig()) == pytest.approx(0.01 / 12)
    assert rollback_alpha(PipelineConfig(canary_steps=(50, 100))) == pytest.approx(0.01 / 6)


@given(successes=st.integers(0, 100_000), failures=st.integers(0, 100_000),
       threshold=st.floats(0.01, 0.99))
def test_the_bounds_bracket_the_observed_rate(successes: int, failures: int,
                                              threshold: float) -> None:
    n = successes + failures
    check = success_rate_check(successes, n, threshold, rollback_alpha=1e-3)
    if n == 0:
        assert check.verdict is Verdict.INCONCLUSIVE
        return
    assert check.lower is not None and check.upper is not None
    assert 0.0 <= check.lower <= successes / n <= check.upper <= 1.0


def _brute_force_bound(successes: int, failures: int, alpha: float, upper: bool) -> float:
    mixture = stats._BetaMixture.centred(0.9)
    level = math.log(1.0 / alpha) - mixture.log_ratio_term(successes, failures)
    inside, outside = successes / (successes + failures), (1.0 if upper else 0.0)
    for _ in range(200):
        mid = (inside + outside) / 2.0
        if mid in (0.0, 1.0) or -successes * math.log(mid) - failures * math.log1p(-mid) >= level:
            outside = mid
        else:
            inside = mid
    return inside


@given(successes=st.integers(1, 50_000), failures=st.integers(1, 50_000),
       alpha=st.floats(1e-6, 0.5))
def test_newton_bounds_match_bisection_and_err_on_the_wide_side(successes: int, failures: int,
                                                                alpha: float) -> None:
    mixture = stats._BetaMixture.centred(0.9)
    for upper in (True, False):
        fast = stats._rate_bound(successes, failures, mixture, alpha, upper=upper)
        exact = _brute_force_bound(successes, failures, alpha, upper)
        assert fast == pytest.approx(exact, abs=1e-7)
        assert (fast >= exact - 1e-12) if upper else (fast <= exact + 1e-12)


def test_the_always_valid_boundary_is_wider_than_a_fixed_sample_z() -> None:
    for r in (0.5, 1.0, 10.0, 1000.0):
        assert mixture_boundary(r, 0.05) > 1.645
        assert mixture_boundary(r, 0.001) > mixture_boundary(r, 0.05)


def _latency_looks(rng: np.random.Generator, slowdown: float, paths: int) -> list[Verdict]:
    """Worst verdict over looks at 200..2000 candidate samples, baseline 9x as many."""
    worst = []
    for _ in range(paths):
        base = rng.lognormal(math.log(40.0), 0.5, 18_000)
        cand = rng.lognormal(math.log(40.0 * slowdown), 0.5, 2_000)
        seen = set()
        for n in range(200, 2001, 100):
            b, c = base[: 9 * n], cand[:n]
            seen.add(latency_ratio_check(
                LatencyEvidence(float(np.percentile(c, 95)), float(np.median(c)), n),
                LatencyEvidence(float(np.percentile(b, 95)), float(np.median(b)), 9 * n),
                0.2, rollback_alpha=0.01).verdict)
        worst.append(Verdict.UNHEALTHY if Verdict.UNHEALTHY in seen else
                     Verdict.HEALTHY if Verdict.HEALTHY in seen else Verdict.INCONCLUSIVE)
    return worst


def test_equal_latency_is_rarely_called_too_slow_over_many_looks() -> None:
    worst = _latency_looks(np.random.default_rng(3), 1.0, 200)
    assert worst.count(Verdict.UNHEALTHY) <= 2
    assert worst.count(Verdict.HEALTHY) >= 190


def test_a_p95_fifty_percent_higher_is_called_too_slow() -> None:
    worst = _latency_looks(np.random.default_rng(4), 1.5, 100)
    assert worst.count(Verdict.UNHEALTHY) >= 95


def test_a_p95_above_the_limit_on_200_samples_is_not_yet_a_verdict() -> None:
    check = latency_ratio_check(LatencyEvidence(115.0, 50.0, 200),
                                LatencyEvidence(90.0, 40.0, 3800), 0.2,
                                rollback_alpha=rollback_alpha(PipelineConfig()))
    assert check.verdict is Verdict.INCONCLUSIVE
    assert check.estimate is not None and check.estimate > 1.2


def test_without_a_median_the_latency_bounds_are_wider() -> None:
    def width(p50: float | None) -> float:
        check = latency_ratio_check(LatencyEvidence(90.0, p50, 1000),
                                    LatencyEvidence(90.0, p50, 9000), 0.2,
                                    rollback_alpha=0.001)
        assert check.lower is not None and check.upper is not None
        return check.upper - check.lower

    assert width(None) > width(40.0)


def _first_latency_verdicts(rng: np.random.Generator, ratio: float, paths: int,
                            sigma: float = 0.5) -> list[tuple[Verdict, float]]:
    """First verdict of a 5 % step (baseline 19x the candidate's samples) looked at every 100
    candidate samples, with the information it had when it concluded."""
    alpha = rollback_alpha(PipelineConfig())
    found: list[tuple[Verdict, float]] = []
    for _ in range(paths):
        n = 0
        while True:
            n += 100
            c = rng.lognormal(math.log(40.0 * ratio), sigma, n)
            b = rng.lognormal(math.log(40.0), sigma, 19 * n)
            check = latency_ratio_check(
                LatencyEvidence(float(np.percentile(c, 95)), float(np.median(c)), n),
                LatencyEvidence(float(np.percentile(b, 95)), float(np.median(b)), 19 * n),
                0.2, rollback_alpha=alpha)
            if check.verdict is not Verdict.INCONCLUSIVE:
                assert check.information is not None
                found.append((check.verdict, check.information))
                break
    return found


def test_a_p95_at_the_limit_squared_is_rolled_back_with_the_planned_power() -> None:
    verdicts = _first_latency_verdicts(np.random.default_rng(6), 1.2 * 1.2, 100)
    assert sum(v is Verdict.UNHEALTHY for v, _ in verdicts) >= 95


def test_a_p95_exactly_at_the_limit_is_not_rolled_back_and_concludes_at_the_planned_information(
) -> None:
    verdicts = _first_latency_verdicts(np.random.default_rng(7), 1.2, 60)
    assert sum(v is Verdict.UNHEALTHY for v, _ in verdicts) <= 1
    assert max(info for _, info in verdicts) < 1.3  # looks come every 100 samples


def test_planned_information_ends_an_undecided_latency_check_as_not_shown_worse() -> None:
    alpha = rollback_alpha(PipelineConfig())
    planned = stats.planned_latency_standard_error(0.2, alpha)

    def check(n: int) -> stats.CheckResult:
        return latency_ratio_check(LatencyEvidence(49.0, 40.0, n),
                                   LatencyEvidence(44.0, 40.0, 10**9), 0.2,
                                   rollback_alpha=alpha)

    n_planned = math.ceil((LatencyEvidence(49.0, 40.0, 1).log_p95_standard_error() / planned) ** 2)
    assert check(n_planned // 2).verdict is Verdict.INCONCLUSIVE
    at_plan = check(n_planned + 1)
    assert at_plan.verdict is Verdict.HEALTHY and "planned information" in at_plan.reason


def test_a_thin_baseline_reference_lowers_the_target_to_what_the_comparison_can_reach() -> None:
    alpha = rollback_alpha(PipelineConfig())
    reference = LatencyEvidence(44.0, 25.0, 300)
    thin = latency_ratio_check(LatencyEvidence(48.0, 29.0, 300), reference, 0.2,
                               rollback_alpha=alpha, baseline_is_reference=True)
    as_if_live = latency_ratio_check(LatencyEvidence(48.0, 29.0, 300), reference, 0.2,
                                     rollback_alpha=alpha)
    assert thin.verdict is Verdict.HEALTHY and "only 300 samples" in thin.reason
    assert as_if_live.verdict is Verdict.INCONCLUSIVE


def test_a_latency_cliff_near_the_p95_widens_the_error_so_equal_candidates_stay_safe() -> None:
    """A fast core and a 6 % slow tail: the p95 sits on the cliff. The log-normal fit alone
    calls an equal candidate slower than +20 % at some look in many paths; the data's own
    quantile spacing does not."""
    rng = np.random.default_rng(11)
    alpha = rollback_alpha(PipelineConfig())

    def draw(n: int) -> np.ndarray:
        slow = rng.random(n) < 0.06
        return np.where(slow, rng.lognormal(math.log(4.0), 0.3, n),
                        rng.lognormal(math.log(1.0), 0.15, n))

    def evidence(x: np.ndarray, spacing: bool) -> LatencyEvidence:
        p50, p93, p95, p97 = (float(q) for q in np.percentile(x, [50, 93, 95, 97]))
        return LatencyEvidence(p95, p50, x.size, *((p93, p97) if spacing else (None, None)))

    rolled_back = {True: 0, False: 0}
    for _ in range(60):
        base, cand = draw(4000), draw(4000)
        for spacing in (True, False):
            rolled_back[spacing] += any(
                latency_ratio_check(evidence(cand[:n], spacing), evidence(base[:n], spacing),
                                    0.2, rollback_alpha=alpha).verdict is Verdict.UNHEALTHY
                for n in range(200, 4001, 200))
    assert rolled_back[True] == 0
    assert rolled_back[False] >= 3  # what the fit alone did
