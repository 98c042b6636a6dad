"""A small run of bench/canary_sim.py: CI guards the judgement end to end (looser bounds)."""

from __future__ import annotations

from bench.canary_sim import SCENARIOS, run_scenario

ROLLOUTS = 200


def test_a_candidate_equal_to_production_is_almost_never_rolled_back() -> None:
    # Good rollouts run all stages, about 110 looks each at one every 2 minutes: fewer of them.
    report = run_scenario(SCENARIOS[0], ROLLOUTS // 2, seed=101, requests_per_second=10.0,
                          tick_seconds=120.0)
    assert report.rollback_rate <= 0.03
    assert all(r.seconds_to_promotion is not None for r in report.results if not r.rolled_back)


def test_a_candidate_ten_points_worse_is_rolled_back_by_its_second_canary_step() -> None:
    report = run_scenario(SCENARIOS[1], ROLLOUTS, seed=102, requests_per_second=10.0,
                          tick_seconds=60.0)
    assert report.rolled_back_by_canary_step(2) >= 0.90


def test_a_candidate_with_half_again_the_p95_is_rolled_back() -> None:
    report = run_scenario(SCENARIOS[2], ROLLOUTS, seed=103, requests_per_second=10.0,
                          tick_seconds=60.0)
    assert report.rollback_rate >= 0.90
    assert all(r.seconds_to_promotion is None for r in report.results if r.rolled_back)
