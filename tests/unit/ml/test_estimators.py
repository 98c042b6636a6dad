import numpy as np
import pytest

from policyhub.ml.dataset import LoggedDataset
from policyhub.ml.estimators import (
    RatioBootstrap,
    doubly_robust,
    effective_sample_size,
    estimate_interval,
    importance_weights,
    ipw,
    snips,
)


def two_decisions() -> LoggedDataset:
    return LoggedDataset(
        decision_ids=("d0", "d1"),
        features=np.zeros((5, 3), dtype=np.float32),
        offsets=np.array([0, 2, 5]),
        chosen=np.array([0, 2]),
        propensity=np.array([0.5, 0.25]),
        reward=np.array([1.0, 0.0]),
        context_dim=1,
        item_dim=1,
    )


TARGET = np.array([0.8, 0.2, 0.1, 0.4, 0.5])
Q_HAT = np.array([0.6, 0.3, 0.2, 0.4, 0.1])


def test_importance_weights_divide_target_by_logged_propensity() -> None:
    np.testing.assert_allclose(importance_weights(two_decisions(), TARGET), [1.6, 2.0])


def test_ipw_by_hand() -> None:
    # (1.6·1 + 2·0) / 2
    assert ipw(two_decisions(), TARGET) == pytest.approx(0.8, abs=1e-12)


def test_snips_by_hand() -> None:
    # 1.6 / (1.6 + 2)
    assert snips(two_decisions(), TARGET) == pytest.approx(1.6 / 3.6, abs=1e-12)


def test_doubly_robust_by_hand() -> None:
    # d0: 0.8·0.6 + 0.2·0.3 + 1.6·(1 - 0.6) = 1.18; d1: 0.02 + 0.16 + 0.05 + 2·(0 - 0.1) = 0.03
    assert doubly_robust(two_decisions(), TARGET, Q_HAT) == pytest.approx(0.605, abs=1e-12)


def test_kish_effective_sample_size_by_hand() -> None:
    assert effective_sample_size(np.array([1.6, 2.0])) == pytest.approx(3.6**2 / 6.56)
    assert effective_sample_size(np.ones(7)) == pytest.approx(7.0)
    assert effective_sample_size(np.zeros(3)) == 0.0


def test_doubly_robust_with_a_perfect_reward_model_is_the_direct_method() -> None:
    data = two_decisions()
    q = Q_HAT.copy()
    q[data.chosen_rows] = data.reward
    direct = (0.8 * 1.0 + 0.2 * 0.3 + 0.1 * 0.2 + 0.4 * 0.4 + 0.5 * 0.0) / 2
    assert doubly_robust(data, TARGET, q) == pytest.approx(direct)


def test_estimators_reject_probabilities_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="one value per candidate row"):
        ipw(two_decisions(), TARGET[:4])
    with pytest.raises(ValueError, match="reward_predictions"):
        estimate_interval("dr", two_decisions(), TARGET)


def logged_uniform(n: int, k: int, seed: int) -> tuple[LoggedDataset, np.ndarray]:
    rng = np.random.default_rng(seed)
    chosen = rng.integers(0, k, n)
    target = rng.dirichlet(np.ones(k), size=n).ravel()
    data = LoggedDataset(
        decision_ids=tuple(str(i) for i in range(n)),
        features=np.zeros((n * k, 3), dtype=np.float32),
        offsets=np.arange(n + 1) * k,
        chosen=chosen,
        propensity=np.full(n, 1.0 / k),
        reward=(rng.random(n) < 0.3).astype(float),
        context_dim=1,
        item_dim=1,
    )
    return data, target


def test_logging_policy_evaluated_on_its_own_logs_is_the_mean_reward() -> None:
    data, _ = logged_uniform(500, 4, 0)
    own = np.full(data.features.shape[0], 0.25)
    assert ipw(data, own) == pytest.approx(data.reward.mean())
    assert snips(data, own) == pytest.approx(data.reward.mean())


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate() -> None:
    data, target = logged_uniform(2000, 5, 1)
    a = estimate_interval("snips", data, target, n_bootstrap=300, seed=7)
    b = estimate_interval("snips", data, target, n_bootstrap=300, seed=7)
    c = estimate_interval("snips", data, target, n_bootstrap=300, seed=8)
    assert a == b
    assert a != c
    assert a.ci_low < a.estimate < a.ci_high


def test_grouped_bootstrap_spreads_like_the_per_decision_bootstrap() -> None:
    data, target = logged_uniform(20_000, 5, 2)
    w = importance_weights(data, target)
    num, den = w * data.reward, w
    exact = RatioBootstrap(data.n_decisions, n_bootstrap=400, seed=1, max_groups=20_000)
    grouped = RatioBootstrap(data.n_decisions, n_bootstrap=400, seed=1, max_groups=500)
    assert exact.n_groups == 20_000
    assert grouped.n_groups == 500
    spread_exact = exact.replicates(num, den).std()
    spread_grouped = grouped.replicates(num, den).std()
    assert spread_grouped == pytest.approx(spread_exact, rel=0.2)


def test_paired_replicates_of_identical_statistics_cancel() -> None:
    data, target = logged_uniform(300, 3, 3)
    w = importance_weights(data, target)
    boot = RatioBootstrap(data.n_decisions, n_bootstrap=50, seed=0)
    first = boot.replicates(w * data.reward, w)
    second = boot.replicates(w * data.reward, w)
    assert np.array_equal(first - second, np.zeros(50))
