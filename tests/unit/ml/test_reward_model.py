import numpy as np
import pytest

from policyhub.ml import reward_model
from policyhub.ml.dataset import LoggedDataset
from policyhub.ml.reward_model import (
    QuadraticLogit,
    RewardModelConfig,
    cross_fitted_predictions,
    fit_reward_model,
    predict_reward,
)
from policyhub.ml.scorers import retrieval_scorer
from policyhub.ml.simulator import BanditSimulator, SimulatorConfig


def test_pairwise_model_predicts_as_its_quadratic_form_what_sklearn_predicts() -> None:
    data = BanditSimulator(SimulatorConfig(seed=4)).log_dataset(3000, retrieval_scorer, seed=4)
    model = fit_reward_model(data)
    assert QuadraticLogit.of(model) is not None
    expected = model.predict_proba(data.features.astype(np.float64))[:, 1]
    assert np.max(np.abs(predict_reward(model, data.features) - expected)) < 1e-9


def test_soft_reward_model_keeps_its_quadratic_form_exact() -> None:
    data = BanditSimulator(SimulatorConfig(seed=5)).log_dataset(2000, retrieval_scorer, seed=5)
    rng = np.random.default_rng(5)
    soft = LoggedDataset(**{**data.__dict__, "reward": rng.uniform(0.0, 1.0, data.n_decisions)})
    model = fit_reward_model(soft)
    expected = model.predict_proba(soft.features.astype(np.float64))[:, 1]
    assert np.max(np.abs(predict_reward(model, soft.features) - expected)) < 1e-9


def test_mlp_model_is_not_rewritten() -> None:
    data = BanditSimulator(SimulatorConfig(seed=6)).log_dataset(500, retrieval_scorer, seed=6)
    model = fit_reward_model(data, RewardModelConfig(kind="mlp"))
    assert QuadraticLogit.of(model) is None
    assert np.allclose(predict_reward(model, data.features), model.predict(data.features))


def test_cross_fitted_predictions_come_from_the_other_fold() -> None:
    data = BanditSimulator(SimulatorConfig(seed=7)).log_dataset(1000, retrieval_scorer, seed=7)
    q = cross_fitted_predictions(data)
    in_sample = predict_reward(fit_reward_model(data), data.features)
    assert q.shape == (data.features.shape[0],)
    assert q.min() > 0.0 and q.max() < 1.0
    assert not np.allclose(q, in_sample)


def test_cross_fitting_on_a_sample_of_the_other_fold_only_above_the_cap() -> None:
    data = BanditSimulator(SimulatorConfig(seed=7)).log_dataset(1000, retrieval_scorer, seed=7)
    q = cross_fitted_predictions(data)
    assert np.array_equal(cross_fitted_predictions(data, max_fit_decisions=1000), q)
    capped = cross_fitted_predictions(data, max_fit_decisions=100)
    assert capped.shape == q.shape and not np.allclose(capped, q)
    assert np.array_equal(cross_fitted_predictions(data, max_fit_decisions=100), capped)


def test_quadratic_form_predicts_a_selection_of_rows_in_blocks_as_all_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = BanditSimulator(SimulatorConfig(seed=3)).log_dataset(300, retrieval_scorer, seed=3)
    model = fit_reward_model(data)
    rows = np.flatnonzero(np.arange(data.features.shape[0]) % 3 == 1)
    whole = predict_reward(model, data.features)
    monkeypatch.setattr(reward_model, "PREDICT_ROWS", 7)
    assert np.allclose(predict_reward(model, data.features, rows), whole[rows], rtol=0, atol=1e-12)
    assert np.allclose(predict_reward(model, data.features), whole, rtol=0, atol=1e-12)
