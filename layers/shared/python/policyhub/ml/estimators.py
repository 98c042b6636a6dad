"""Off-policy estimators on logged decisions: IPW, SNIPS, doubly robust; bootstrap intervals.

Notation per decision i: logged top item a_i with logging propensity p_i and reward r_i; the
target policy gives π(a|x_i) to every candidate (same flattened layout as the features);
w_i = π(a_i|x_i) / p_i; q̂ is a reward model's prediction for every candidate.
    IPW   = mean(w·r)
    SNIPS = Σ w·r / Σ w
    DR    = mean(Σ_a π(a|x) q̂(x,a) + w·(r - q̂(x, a_i)))      (as obp's DoublyRobust)
Every estimator is a ratio of per-decision sums, which is what the bootstrap resamples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from policyhub.ml.dataset import LoggedDataset
from policyhub.ml.exploration import (
    DEFAULT_EPSILON,
    DEFAULT_TEMPERATURE,
    action_probabilities_flat,
)
from policyhub.ml.scorers import Scorer

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Method = Literal["ipw", "snips", "dr"]

METHOD_NAMES: dict[Method, str] = {
    "ipw": "ipw",
    "snips": "snips",
    "dr": "doubly_robust",
}
# Above this many decisions the bootstrap resamples random groups of decisions (see 023).
DEFAULT_MAX_GROUPS = 4096
DEFAULT_BOOTSTRAP = 1000


def target_probabilities(
    data: LoggedDataset,
    scorer: Scorer,
    epsilon: float = DEFAULT_EPSILON,
    temperature: float = DEFAULT_TEMPERATURE,
) -> FloatArray:
    """π(a|x) of scorer + exploration for every logged candidate (flattened layout)."""
    return action_probabilities_flat(scorer(data.features), data.offsets, epsilon, temperature)


def _check_flat(data: LoggedDataset, values: FloatArray, name: str) -> FloatArray:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size != data.features.shape[0]:
        raise ValueError(f"{name} needs one value per candidate row ({data.features.shape[0]})")
    return v


def importance_weights(data: LoggedDataset, target_probs: FloatArray) -> FloatArray:
    pi = _check_flat(data, target_probs, "target_probs")
    w: FloatArray = pi[data.chosen_rows] / data.propensity
    return w


def effective_sample_size(weights: FloatArray) -> float:
    """Kish's effective sample size (Σw)² / Σw²."""
    w = np.asarray(weights, dtype=np.float64)
    sq = float(np.dot(w, w))
    return float(w.sum() ** 2 / sq) if sq > 0 else 0.0


def contributions(
    method: Method,
    data: LoggedDataset,
    target_probs: FloatArray,
    reward_predictions: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Per-decision (numerator, denominator) whose sums' ratio is the estimate."""
    w = importance_weights(data, target_probs)
    r = data.reward
    if method == "ipw":
        return w * r, np.ones_like(w)
    if method == "snips":
        return w * r, w
    if method == "dr":
        if reward_predictions is None:
            raise ValueError("the doubly robust estimator needs reward_predictions")
        q = _check_flat(data, reward_predictions, "reward_predictions")
        pi = np.asarray(target_probs, dtype=np.float64).reshape(-1)
        direct = np.add.reduceat(pi * q, data.offsets[:-1])
        return direct + w * (r - q[data.chosen_rows]), np.ones_like(w)
    raise ValueError(f"unknown method {method!r}")


def estimate(
    method: Method,
    data: LoggedDataset,
    target_probs: FloatArray,
    reward_predictions: FloatArray | None = None,
) -> float:
    num, den = contributions(method, data, target_probs, reward_predictions)
    return float(num.sum() / den.sum())


def ipw(data: LoggedDataset, target_probs: FloatArray) -> float:
    return estimate("ipw", data, target_probs)


def snips(data: LoggedDataset, target_probs: FloatArray) -> float:
    return estimate("snips", data, target_probs)


def doubly_robust(
    data: LoggedDataset, target_probs: FloatArray, reward_predictions: FloatArray
) -> float:
    return estimate("dr", data, target_probs, reward_predictions)


@dataclass(frozen=True)
class Interval:
    estimate: float
    ci_low: float
    ci_high: float


class RatioBootstrap:
    """Percentile bootstrap of ratio statistics Σnum/Σden over the same resamples.

    Up to ``max_groups`` decisions each decision is resampled (the textbook bootstrap). Above
    it, decisions are put into ``max_groups`` random groups and groups are resampled: for iid
    decisions a group sum is an iid draw too, so the spread is the same while a million
    decisions cost a [B, G] count matrix instead of B·n indices. Every statistic sees the same
    resampled groups, so differences between statistics are paired.
    """

    def __init__(
        self,
        n: int,
        *,
        n_bootstrap: int = DEFAULT_BOOTSTRAP,
        seed: int = 0,
        max_groups: int = DEFAULT_MAX_GROUPS,
    ) -> None:
        if n < 1:
            raise ValueError("the bootstrap needs at least one decision")
        if n_bootstrap < 1:
            raise ValueError("n_bootstrap must be >= 1")
        rng = np.random.default_rng(seed)
        self.n = n
        self.n_groups = min(n, max_groups)
        self._groups = (
            np.arange(n, dtype=np.int64)
            if self.n_groups == n
            else rng.integers(0, self.n_groups, size=n, dtype=np.int64)
        )
        picks = rng.integers(0, self.n_groups, size=(n_bootstrap, self.n_groups), dtype=np.int64)
        picks += np.arange(n_bootstrap, dtype=np.int64)[:, None] * self.n_groups
        self._counts: FloatArray = (
            np.bincount(picks.ravel(), minlength=n_bootstrap * self.n_groups)
            .reshape(n_bootstrap, self.n_groups)
            .astype(np.float64)
        )

    def _group_sums(self, values: FloatArray) -> FloatArray:
        sums = np.bincount(self._groups, weights=values, minlength=self.n_groups)
        return sums.astype(np.float64, copy=False)

    def replicates(self, num: FloatArray, den: FloatArray) -> FloatArray:
        """Bootstrap replicates [B] of Σnum/Σden."""
        top = self._counts @ self._group_sums(num)
        bottom = self._counts @ self._group_sums(den)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio: FloatArray = np.where(bottom != 0, top / bottom, np.nan)
        return ratio


def percentile_interval(
    point: float, replicates: FloatArray, confidence: float = 0.95
) -> Interval:
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return Interval(point, point, point)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return Interval(point, float(low), float(high))


def estimate_interval(
    method: Method,
    data: LoggedDataset,
    target_probs: FloatArray,
    reward_predictions: FloatArray | None = None,
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    num, den = contributions(method, data, target_probs, reward_predictions)
    boot = RatioBootstrap(data.n_decisions, n_bootstrap=n_bootstrap, seed=seed)
    point = float(num.sum() / den.sum())
    return percentile_interval(point, boot.replicates(num, den), confidence)
