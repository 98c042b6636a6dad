"""Learning-loop benchmarks: off-policy estimators on 1M logged decisions, training on 100k.

    .venv/bin/python bench/compare.py [--decisions 1000000] [--train 100000] [--repeat 5]

Prints the median wall time of each step. Targets: estimators (IPW, SNIPS, DR with a 200-resample
bootstrap by default, ESS, paired compare) <= 2 s on 1M decisions; training (fit + ONNX export +
verification + held-out metrics) <= 60 s on 100k decisions. Each step is a function so the
end-to-end part on the local stack can be added beside them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

from policyhub.ml.compare import compare
from policyhub.ml.dataset import LoggedDataset
from policyhub.ml.estimators import FloatArray, estimate_interval, target_probabilities
from policyhub.ml.scorers import negated, retrieval_scorer, with_noise
from policyhub.ml.simulator import BanditSimulator, SimulatorConfig
from policyhub.ml.trainer import TrainerConfig, train_policy

T = TypeVar("T")


def timed(label: str, repeat: int, step: Callable[[], T]) -> T:
    times: list[float] = []
    result: T | None = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - started)
    print(f"{label:<58} median {statistics.median(times):7.3f} s  (n={repeat})")
    assert result is not None
    return result


def logged(n: int, seed: int = 1) -> tuple[BanditSimulator, LoggedDataset]:
    sim = BanditSimulator(SimulatorConfig(seed=seed))
    return sim, sim.log_dataset(n, retrieval_scorer, seed=seed)


def bench_estimators(n: int, repeat: int, bootstrap: int) -> None:
    _, data = timed(f"simulate {n:,} logged decisions", 1, lambda: logged(n))
    rows = data.features.shape[0]
    base = timed(
        f"baseline probabilities ({rows:,} candidate rows)",
        repeat,
        lambda: target_probabilities(data, retrieval_scorer),
    )
    cand = target_probabilities(data, with_noise(retrieval_scorer, 0.5, seed=3))
    q: FloatArray = 0.5 + 0.0 * base  # a constant reward model: DR's cost does not depend on q
    for method in ("ipw", "snips", "dr"):
        timed(
            f"{method} + {bootstrap}-resample bootstrap CI",
            repeat,
            lambda m=method: estimate_interval(  # type: ignore[misc]
                m, data, cand, q, n_bootstrap=bootstrap
            ),
        )
    result = timed(
        f"compare (dr, paired {bootstrap}-resample bootstrap, ESS)",
        repeat,
        lambda: compare(
            data, base, cand, agent_type="bench", baseline_version="v1.0.0",
            candidate_version="v1.0.1", reward_predictions=q, n_bootstrap=bootstrap,
        ),
    )  # fmt: skip
    print(f"  -> {result.recommendation}, lift {result.lift.absolute:+.4f} "
          f"[{result.lift.ci_low:+.4f}, {result.lift.ci_high:+.4f}], "
          f"ESS {result.effective_sample_size:,.0f}")  # fmt: skip


def bench_training(n: int, repeat: int) -> None:
    sim, data = timed(f"simulate {n:,} logged decisions", 1, lambda: logged(n, seed=2))
    result = timed(
        f"train on {n:,} decisions (fit, export, verify, metrics)",
        repeat,
        lambda: train_policy(data, TrainerConfig()),
    )
    from policyhub.ml.scorers import onnx_scorer

    truth = sim.policy_value(onnx_scorer(result.artifact))
    print(f"  -> true reward: trained {truth:.4f}, retrieval "
          f"{sim.policy_value(retrieval_scorer):.4f}, reversed "
          f"{sim.policy_value(negated(retrieval_scorer)):.4f}; offline metrics "
          f"dr {result.metrics['dr_estimate']:.4f} vs logged "
          f"{result.metrics['logging_policy_reward']:.4f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--train", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    bench_estimators(args.decisions, args.repeat, args.bootstrap)
    bench_training(args.train, max(1, args.repeat // 2))


if __name__ == "__main__":
    main()
