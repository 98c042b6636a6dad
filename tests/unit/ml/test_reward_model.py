import numpy as np

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
