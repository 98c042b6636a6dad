"""Scorers as plain functions: feature rows [M, D] float32 -> scores [M] float64.

The learning loop (simulation, training, evaluation) scores through this one shape whatever
is behind it: the retrieval score column, an ONNX artifact, or a fitted scikit-learn model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from policyhub.ml.scoring import open_policy, sha256_hex

Float32Array = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]
Scorer = Callable[[Float32Array], FloatArray]

# Scoring a million rows at once would hold every intermediate tensor in memory at once.
ONNX_BATCH_ROWS = 65_536


def retrieval_scorer(features: Float32Array) -> FloatArray:
    """The logging policy without a model: the retrieval score (last column of a row)."""
    return features[:, -1].astype(np.float64)


def onnx_scorer(artifact: bytes) -> Scorer:
    session = open_policy(sha256_hex(artifact), artifact)

    def score(features: Float32Array) -> FloatArray:
        matrix = np.ascontiguousarray(features, dtype=np.float32)
        parts = [
            session.score(matrix[i : i + ONNX_BATCH_ROWS]).astype(np.float64)
            for i in range(0, matrix.shape[0], ONNX_BATCH_ROWS)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)

    return score


def sklearn_scorer(model: Any) -> Scorer:
    """Scores of a fitted regressor (``predict``) or binary classifier (P(class 1))."""

    def score(features: Float32Array) -> FloatArray:
        if hasattr(model, "predict_proba"):
            return np.asarray(model.predict_proba(features)[:, 1], dtype=np.float64)
        return np.asarray(model.predict(features), dtype=np.float64).reshape(-1)

    return score


def negated(scorer: Scorer) -> Scorer:
    """The reverse preference of ``scorer`` (a deliberately bad policy for tests)."""

    def score(features: Float32Array) -> FloatArray:
        return -scorer(features)

    return score


def with_noise(scorer: Scorer, scale: float, seed: int) -> Scorer:
    """``scorer`` plus Gaussian noise; ``scale`` is relative to the scores' std per call."""
    rng = np.random.default_rng(seed)

    def score(features: Float32Array) -> FloatArray:
        s = scorer(features)
        spread = float(s.std()) or 1.0
        noisy: FloatArray = s + rng.normal(0.0, scale * spread, size=s.shape)
        return noisy

    return score
