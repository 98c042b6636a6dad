"""Compare says when an estimate or its interval lies outside the reward range, and why (a thin
effective sample), instead of reporting e.g. 1.11 [0.75, 1.74] for a 0/1 success bare (issue 14).
"""

from __future__ import annotations

import numpy as np

from policyhub.ml.compare import compare, range_warnings
from policyhub.ml.dataset import LoggedDataset


def _rare_wins(n: int = 50, rare_share: float = 0.1) -> LoggedDataset:
    """Two candidates per decision; the logs chose the second with propensity 0.05, yet it was
    chosen (and succeeded) in `rare_share` of them: a policy that always picks it has a handful
    of importance weights of 20, which carry doubly robust past 1. The first succeeds every
    other time, so a policy that picks it is estimated well inside the range."""
    rare = np.zeros(n, dtype=np.int64)
    rare[: int(n * rare_share)] = 1
    return LoggedDataset(
        decision_ids=tuple(f"d{i}" for i in range(n)),
        features=np.zeros((2 * n, 3), dtype=np.float32),
        offsets=np.arange(0, 2 * n + 1, 2, dtype=np.int64),
        chosen=rare,
        propensity=np.where(rare == 1, 0.05, 0.95),
        reward=np.where(rare == 1, 1.0, np.arange(n) % 2),
        context_dim=1,
        item_dim=1,
    )


def test_an_estimate_outside_the_reward_range_says_so_and_why() -> None:
    data = _rare_wins()
    first = np.tile([1.0, 0.0], data.n_decisions)
    second = np.tile([0.0, 1.0], data.n_decisions)
    result = compare(
        data,
        first,
        second,
        agent_type="memory_manager",
        baseline_version="v1.0.0",
        candidate_version="v1.0.1",
        reward_predictions=np.full(2 * data.n_decisions, 0.5),
        n_bootstrap=200,
    )
    assert result.candidate.estimated_reward > 1.0
    (warning,) = result.candidate.warnings
    assert "outside the reward range [0, 1]" in warning
    assert "effective sample size of 5.0 (of 50 held-out decisions), below 100" in warning
    assert "importance weights" in warning
    assert 0.0 <= result.baseline.estimated_reward <= 1.0
    assert result.baseline.warnings == []
    body = result.to_dict()
    assert body["candidate"]["warnings"] == [warning] and body["baseline"]["warnings"] == []


def test_an_interval_reaching_outside_is_named_too() -> None:
    (warning,) = range_warnings(0.97, 0.91, 1.04, ess=40.0, n=800)
    assert "interval [0.9100, 1.0400] of 0.9700 reaches outside the reward range" in warning
    assert "below 100" in warning


def test_with_enough_effective_samples_the_why_is_the_correction_not_thin_data() -> None:
    (warning,) = range_warnings(1.002, 0.99, 1.01, ess=600.0, n=1000)
    assert "effective sample size of 600.0 (of 1000 held-out decisions)" in warning
    assert "below" not in warning


def test_an_estimate_inside_the_range_has_no_warning() -> None:
    assert range_warnings(0.7, 0.65, 0.75, ess=3.0, n=10) == []
    assert range_warnings(0.0, 0.0, 1.0, ess=3.0, n=10) == []
