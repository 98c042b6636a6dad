"""Check policyhub's off-policy estimators against Open Bandit Pipeline 0.5.7.

Run ONCE in a scratch virtualenv that has obp (see decision 023), with the repo's package on
the path:
    PYTHONPATH=layers/shared/python /tmp/obpvenv/bin/python bench/obp_check.py
It logs decisions in the simulator with retrieval-score exploration, scores them with a
different target policy, and prints max |policyhub - obp| per estimator (must be <= 1e-6).
Not part of the test suite: obp pins old numpy/torch and is not a project dependency.
"""

from __future__ import annotations

import sys

import numpy as np

from policyhub.ml.estimators import doubly_robust, ipw, snips, target_probabilities
from policyhub.ml.reward_model import cross_fitted_predictions
from policyhub.ml.scorers import Float32Array, FloatArray, retrieval_scorer, with_noise
from policyhub.ml.simulator import BanditSimulator, SimulatorConfig

TOLERANCE = 1e-6


def first_features_scorer(features: Float32Array) -> FloatArray:
    return features[:, 0].astype(np.float64) * features[:, -1].astype(np.float64)


def check(seed: int, n: int, n_candidates: int) -> dict[str, float]:
    from obp.ope import (  # type: ignore[import-not-found]
        DoublyRobust,
        InverseProbabilityWeighting,
        SelfNormalizedInverseProbabilityWeighting,
    )

    sim = BanditSimulator(SimulatorConfig(seed=seed, n_candidates=n_candidates))
    data = sim.log_dataset(n, retrieval_scorer, seed=seed)
    target = with_noise(first_features_scorer, 0.5, seed) if seed % 2 else first_features_scorer
    pi = target_probabilities(data, target, epsilon=0.2, temperature=0.7)
    q = cross_fitted_predictions(data, n_folds=2)

    action_dist = pi.reshape(n, n_candidates, 1)
    q_hat = q.reshape(n, n_candidates, 1)
    common = {
        "reward": data.reward,
        "action": data.chosen,
        "position": np.zeros(n, dtype=int),
        "pscore": data.propensity,
        "action_dist": action_dist,
    }
    ours = {
        "ipw": ipw(data, pi),
        "snips": snips(data, pi),
        "dr": doubly_robust(data, pi, q),
    }
    theirs = {
        "ipw": InverseProbabilityWeighting().estimate_policy_value(**common),
        "snips": SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**common),
        "dr": DoublyRobust().estimate_policy_value(
            **common, estimated_rewards_by_reg_model=q_hat
        ),
    }
    return {k: abs(ours[k] - float(theirs[k])) for k in ours}


def main() -> int:
    worst = {"ipw": 0.0, "snips": 0.0, "dr": 0.0}
    for seed, n, k in [(1, 20_000, 10), (2, 50_000, 5), (3, 5_000, 30), (4, 100_000, 10)]:
        diffs = check(seed, n, k)
        shown = " ".join(f"{m}={d:.3e}" for m, d in diffs.items())
        print(f"seed={seed} n={n} candidates={k} {shown}")
        worst = {m: max(worst[m], diffs[m]) for m in worst}
    print("max abs difference: " + " ".join(f"{m}={d:.3e}" for m, d in worst.items()))
    ok = all(d <= TOLERANCE for d in worst.values())
    print("OK" if ok else f"FAILED: above {TOLERANCE}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
