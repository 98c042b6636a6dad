"""Train a scorer from joined logs, export it to ONNX, verify it, and measure it offline.

Steps: split by decision_id hash → fit the reward model on the training part → export ONNX →
check the ONNX scores against scikit-learn on held-out rows → off-policy estimates of the new
policy (scores + exploration) on the held-out part against what was logged there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from policyhub.domain.holdout import HOLDOUT_FRACTION
from policyhub.ml.dataset import LoggedDataset, split_holdout
from policyhub.ml.estimators import (
    effective_sample_size,
    estimate_interval,
    importance_weights,
)
from policyhub.ml.exploration import (
    DEFAULT_EPSILON,
    DEFAULT_TEMPERATURE,
    action_probabilities_flat,
)
from policyhub.ml.onnx_export import DEFAULT_TOLERANCE, export_onnx, verify_onnx
from policyhub.ml.reward_model import (
    RewardModelConfig,
    fit_reward_model,
    predict_reward,
)

Metric = float | int | str | None
VERIFY_ROWS = 20_000


@dataclass(frozen=True)
class TrainerConfig:
    reward_model: RewardModelConfig = field(default_factory=RewardModelConfig)
    holdout_fraction: float = HOLDOUT_FRACTION
    epsilon: float = DEFAULT_EPSILON
    temperature: float = DEFAULT_TEMPERATURE
    onnx_tolerance: float = DEFAULT_TOLERANCE
    n_bootstrap: int = 200
    min_train_decisions: int = 50


@dataclass(frozen=True)
class TrainingResult:
    artifact: bytes
    metrics: dict[str, Metric]


def train_policy(data: LoggedDataset, config: TrainerConfig | None = None) -> TrainingResult:
    config = config or TrainerConfig()
    train, holdout = split_holdout(data, config.holdout_fraction)
    if train.n_decisions < config.min_train_decisions:
        raise ValueError(
            f"{train.n_decisions} training decisions; at least {config.min_train_decisions} needed"
        )
    model = fit_reward_model(train, config.reward_model)
    artifact = export_onnx(model, data.feature_dim)
    check = holdout if holdout.n_decisions else train
    onnx_diff = verify_onnx(
        artifact, model, check.features[:VERIFY_ROWS], tolerance=config.onnx_tolerance
    )
    metrics: dict[str, Metric] = {
        "model": config.reward_model.resolved_kind(data.feature_dim),
        "importance_weighting": str(config.reward_model.importance_weighting).lower(),
        "n_train": train.n_decisions,
        "n_holdout": holdout.n_decisions,
        "feature_dim": data.feature_dim,
        "onnx_max_abs_diff": onnx_diff,
        "artifact_bytes": len(artifact),
    }
    if holdout.n_decisions:
        metrics.update(_holdout_metrics(model, holdout, config))
    return TrainingResult(artifact=artifact, metrics=metrics)


def _holdout_metrics(
    model: object, holdout: LoggedDataset, config: TrainerConfig
) -> dict[str, Metric]:
    q = predict_reward(model, holdout.features)
    chosen_q = q[holdout.chosen_rows]
    probs = action_probabilities_flat(q, holdout.offsets, config.epsilon, config.temperature)
    snips = estimate_interval("snips", holdout, probs, n_bootstrap=config.n_bootstrap)
    dr = estimate_interval("dr", holdout, probs, q, n_bootstrap=config.n_bootstrap)
    logged = float(holdout.reward.mean())
    return {
        "validation_brier": float(np.mean((chosen_q - holdout.reward) ** 2)),
        "logging_policy_reward": logged,
        "snips_estimate": snips.estimate,
        "snips_ci_low": snips.ci_low,
        "snips_ci_high": snips.ci_high,
        "dr_estimate": dr.estimate,
        "dr_ci_low": dr.ci_low,
        "dr_ci_high": dr.ci_high,
        "estimated_lift_vs_logging": dr.estimate - logged,
        "effective_sample_size": effective_sample_size(importance_weights(holdout, probs)),
    }
