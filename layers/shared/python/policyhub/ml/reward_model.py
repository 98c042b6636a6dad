"""Reward models q̂(x, a) ≈ E[reward | feature row]: the trained scorer and DR's regression.

Two model families (decision 024):
- ``pairwise_logistic``: standardise, all degree-2 products of the feature row, logistic
  regression. Context x item products are what a ranking model must learn; fits 100k rows in
  seconds. Its width grows with D², so it is used up to ``PAIRWISE_MAX_DIM``.
- ``mlp``: a small multilayer perceptron regressor for wider rows.
Rewards in [0, 1] that are not 0/1 are learned as soft labels (each row once as class 1 with
weight r and once as class 0 with weight 1 - r), which is the same cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from threadpoolctl import threadpool_limits

from policyhub.ml.dataset import LoggedDataset, holdout_mask

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
ModelKind = Literal["auto", "pairwise_logistic", "mlp"]
PAIRWISE_MAX_DIM = 24
PREDICT_ROWS = 32_768
MAX_FIT_DECISIONS = 200_000


@dataclass(frozen=True)
class RewardModelConfig:
    kind: ModelKind = "auto"
    importance_weighting: bool = False
    max_weight: float = 50.0
    regularization: float = 1.0
    seed: int = 0

    def resolved_kind(self, feature_dim: int) -> Literal["pairwise_logistic", "mlp"]:
        if self.kind != "auto":
            return self.kind
        return "pairwise_logistic" if feature_dim <= PAIRWISE_MAX_DIM else "mlp"


def _weights(data: LoggedDataset, config: RewardModelConfig) -> FloatArray:
    if not config.importance_weighting:
        return np.ones(data.n_decisions)
    w = np.minimum(1.0 / data.propensity, config.max_weight)
    normalised: FloatArray = w / w.mean()
    return normalised


def build_model(kind: Literal["pairwise_logistic", "mlp"], config: RewardModelConfig) -> Pipeline:
    if kind == "pairwise_logistic":
        return make_pipeline(
            StandardScaler(),
            PolynomialFeatures(degree=2),
            StandardScaler(),
            LogisticRegression(C=config.regularization, max_iter=1000),
        )
    return make_pipeline(
        StandardScaler(),
        MLPRegressor(
            hidden_layer_sizes=(64, 32),
            alpha=1e-3,
            max_iter=60,
            early_stopping=True,
            random_state=config.seed,
        ),
    )


def fit_reward_model(data: LoggedDataset, config: RewardModelConfig | None = None) -> Pipeline:
    """Fit q̂ on each decision's chosen row and observed reward."""
    config = config or RewardModelConfig()
    if data.n_decisions == 0:
        raise ValueError("no decisions to train on")
    kind = config.resolved_kind(data.feature_dim)
    x = data.features[data.chosen_rows]
    y = data.reward
    weights = _weights(data, config)
    model = build_model(kind, config)
    last = model.steps[-1][0]
    if kind == "mlp":
        if config.importance_weighting:
            model.fit(x, y, **{f"{last}__sample_weight": weights})
        else:
            model.fit(x, y)
        return model
    if len(np.unique(y)) < 2:
        raise ValueError("all logged rewards are equal: there is nothing to learn from")
    binary = bool(np.all((y == 0.0) | (y == 1.0)))
    # L-BFGS here is a few dozen matrix-vector products of ~10⁴ x D² each: BLAS threads cost
    # more than they save (10x slower with a busy second core; decision 125).
    with threadpool_limits(limits=1, user_api="blas"):
        if binary:
            model.fit(x, y.astype(np.int64), **{f"{last}__sample_weight": weights})
        else:
            doubled = np.concatenate([x, x])
            labels = np.concatenate([np.ones(y.size, np.int64), np.zeros(y.size, np.int64)])
            soft = np.concatenate([weights * y, weights * (1.0 - y)])
            model.fit(doubled, labels, **{f"{last}__sample_weight": soft})
    return model


@dataclass(frozen=True)
class QuadraticLogit:
    """A fitted ``pairwise_logistic`` pipeline as the quadratic form it is.

    Its logit is ``c + z·b + z·(A z)`` with z the standardised row: the degree-2 products, the
    second scaler and the coefficients fold into (c, b, A). Predicting from that needs no
    [rows, D²] expansion, which was most of a cross-fitted DR's time (decision 125).
    """

    mean: FloatArray
    scale: FloatArray
    constant: float
    linear: FloatArray
    quadratic: FloatArray

    @classmethod
    def of(cls, model: Pipeline) -> QuadraticLogit | None:
        steps = [step for _, step in model.steps]
        if len(steps) != 4 or not (
            isinstance(steps[0], StandardScaler)
            and isinstance(steps[1], PolynomialFeatures)
            and isinstance(steps[2], StandardScaler)
            and isinstance(steps[3], LogisticRegression)
            and steps[1].degree == 2
            and steps[3].coef_.shape[0] == 1
        ):
            return None
        inner, poly, outer, logistic = steps
        powers = np.asarray(poly.powers_)
        if powers.max() > 2 or powers.sum(axis=1).max() > 2:
            return None
        coef = logistic.coef_[0] / _scale(outer, powers.shape[0])
        constant = float(logistic.intercept_[0] - coef @ _mean(outer, powers.shape[0]))
        d = powers.shape[1]
        linear = np.zeros(d)
        quadratic = np.zeros((d, d))
        for c, p in zip(coef, powers, strict=True):
            used = np.flatnonzero(p)
            if used.size == 0:
                constant += float(c)
            elif p.sum() == 1:
                linear[used[0]] += c
            else:
                i, j = (used[0], used[0]) if used.size == 1 else (used[0], used[1])
                quadratic[i, j] += c
        return cls(_mean(inner, d), _scale(inner, d), constant, linear, quadratic)

    def predict(self, features: Float32Array, rows: IntArray | None = None) -> FloatArray:
        """The probability of every feature row (of `features[rows]` when given), computed
        `PREDICT_ROWS` rows at a time: the float64 temporaries of 40M rows at once would take
        GBs, and small blocks stay in cache."""
        count = features.shape[0] if rows is None else rows.size
        probability: FloatArray = np.empty(count, dtype=np.float64)
        # [rows, D] x [D, D] products: BLAS threads cost more than they save (as in the fit).
        with threadpool_limits(limits=1, user_api="blas"):
            for start in range(0, count, PREDICT_ROWS):
                block = slice(start, min(start + PREDICT_ROWS, count))
                x = features[block] if rows is None else features[rows[block]]
                z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
                quadratic = np.einsum("ij,ij->i", z @ self.quadratic, z)
                logit = self.constant + z @ self.linear + quadratic
                probability[block] = 0.5 * (1.0 + np.tanh(0.5 * logit))
        return probability


def _mean(scaler: StandardScaler, width: int) -> FloatArray:
    return np.zeros(width) if scaler.mean_ is None else np.asarray(scaler.mean_, np.float64)


def _scale(scaler: StandardScaler, width: int) -> FloatArray:
    return np.ones(width) if scaler.scale_ is None else np.asarray(scaler.scale_, np.float64)


def predict_reward(
    model: Any, features: Float32Array, rows: IntArray | None = None
) -> FloatArray:
    """Predicted expected reward of every row, or of `features[rows]` (probability of class 1
    for classifiers)."""
    if isinstance(model, Pipeline) and (quadratic := QuadraticLogit.of(model)) is not None:
        return quadratic.predict(features, rows)
    if rows is not None:
        features = features[rows]
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(features)[:, 1], dtype=np.float64)
    return np.asarray(model.predict(features), dtype=np.float64).reshape(-1)


def cross_fitted_predictions(
    data: LoggedDataset,
    n_folds: int = 2,
    config: RewardModelConfig | None = None,
    extra: LoggedDataset | None = None,
    max_fit_decisions: int = MAX_FIT_DECISIONS,
) -> FloatArray:
    """q̂ for every candidate row, each decision predicted by a model fit on the other folds.

    For doubly robust evaluation on data whose rewards must not be used to fit the model that
    scores them (as obp's ``RegressionModel.fit_predict`` with ``n_folds``). ``extra`` holds
    other decisions (never evaluated here) that every fold's model is also fit on: with a few
    hundred held-out decisions, half of them fit a poor q̂ and the estimate's spread nearly
    doubles (decision 092). A fold's model is fit on at most ``max_fit_decisions`` of the other
    folds' decisions (a seeded sample): more adds time and memory, not accuracy (decision 127).
    """
    if n_folds < 2:
        raise ValueError("cross-fitting needs at least two folds")
    fold = np.zeros(data.n_decisions, dtype=np.int64)
    for k in range(1, n_folds):
        fold[holdout_mask(data.decision_ids, k / n_folds, salt="crossfit")] += 1
    fold = n_folds - 1 - fold
    predictions = np.zeros(data.features.shape[0], dtype=np.float64)
    row_fold = fold[data.row_decision]
    chosen = data.chosen_only()  # what the model learns from: the other rows need no copy
    sample = np.random.default_rng((config or RewardModelConfig()).seed)
    for k in range(n_folds):
        inside = np.flatnonzero(fold == k)
        outside = np.flatnonzero(fold != k)
        if inside.size == 0:
            continue
        if outside.size == 0 and (extra is None or extra.n_decisions == 0):
            raise ValueError("too few decisions to cross-fit")
        if outside.size > max_fit_decisions:
            outside = np.sort(sample.choice(outside, max_fit_decisions, replace=False))
        fit_on = chosen.subset(outside)
        if extra is not None and extra.n_decisions:
            fit_on = LoggedDataset.concat(fit_on, extra.chosen_only())
        model = fit_reward_model(fit_on, config)
        rows = np.flatnonzero(row_fold == k)
        predictions[rows] = predict_reward(model, data.features, rows)
    return predictions
