"""Learning-loop benchmarks: estimators on 1M decisions, training on 100k, compare end to end.

    .venv/bin/python -m bench.compare [--decisions 1000000] [--train 100000] [--repeat 5]
        [--e2e-decisions 100000] [--e2e-candidates 20] [--e2e-format parquet] [--skip-e2e]

Prints the median wall time of each step. Targets: estimators (IPW, SNIPS, DR with a 200-resample
bootstrap by default, ESS, paired compare) <= 2 s on 1M decisions; training (fit + ONNX export +
verification + held-out metrics) <= 60 s on 100k decisions; the compare service end to end on
the embedded stack (moto's server, as `make up` runs it) <= 3 s for 100k logged decisions of
20 candidates in Parquet objects as the local sink and Firehose write them (`--e2e-format jsonl`
for objects from before Parquet): load and verify both artifacts, read and join the window's
held-out decisions from S3 (DuckDB), score them with both versions, cross-fit DR's reward
model, DR + SNIPS with 1000 paired bootstrap resamples. Compare on millions of decisions, with
its peak memory: `bench.compare_scale`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from policyhub.ml.compare import compare
from policyhub.ml.dataset import LoggedDataset
from policyhub.ml.estimators import FloatArray, estimate_interval, target_probabilities
from policyhub.ml.scorers import negated, retrieval_scorer, with_noise
from policyhub.ml.simulator import BanditSimulator, SimulatorConfig, dataset_records
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


def bench_compare_e2e(n: int, candidates: int, repeat: int, log_format: str = "parquet") -> None:
    """The compare service on the embedded stack, over n logged decisions in S3."""
    import json

    from infra.local.embedded_aws import EmbeddedAws, free_port
    from infra.local.resources import create_all
    from policyhub.adapters import aws
    from policyhub.adapters.interaction_logs import partition
    from policyhub.adapters.local_log_sink import parquet_body
    from policyhub.api import container
    from policyhub.domain.holdout import SPLITS, Split, split_of
    from policyhub.domain.interaction_records import InteractionRecord
    from policyhub.domain.versions import FeatureSchema
    from policyhub.ml.onnx_models import linear_policy
    from policyhub.settings import settings

    stack = EmbeddedAws("127.0.0.1", free_port()).start()
    try:
        create_all()
        config = SimulatorConfig(context_dim=8, item_dim=8, n_candidates=candidates, seed=5)
        sim = BanditSimulator(config)
        schema = FeatureSchema(context_dim=8, item_dim=8)
        trained = train_policy(sim.log_dataset(20_000, retrieval_scorer, seed=9)).artifact
        registry = container.registry()
        retrieval = linear_policy([0.0] * (schema.input_dim - 1) + [1.0])
        base = registry.register(None, "bench", "memory_manager", retrieval, schema).version
        cand = registry.register(None, "bench", "memory_manager", trained, schema).version

        def write() -> int:
            now = datetime.now(UTC)
            data = sim.log_dataset(n, retrieval_scorer, seed=11)
            records = dataset_records(
                data, retrieval_scorer(data.features), tenant_id="bench",
                agent_type="memory_manager", policy_version=None,
                after=now - timedelta(minutes=31), end=now - timedelta(minutes=1),
            )  # fmt: skip
            size = 0
            for k in range(0, len(records), 20_000):
                at = datetime.fromisoformat(str(records[k]["at"]).replace("Z", "+00:00"))
                # each side in objects of its own, as the sinks write them
                sides: dict[Split, list[InteractionRecord]] = {split: [] for split in SPLITS}
                for r in records[k : k + 20_000]:
                    sides[split_of(r["decision_id"])].append(r)
                for split, chunk in sides.items():
                    if log_format == "jsonl":  # as objects written before Parquet
                        body = "".join(
                            json.dumps(r, separators=(",", ":")) + "\n" for r in chunk
                        ).encode()
                    else:  # as the local sink and Firehose write them
                        body = parquet_body(chunk)
                    name = f"bench-{k:08d}-{split}.{log_format}"
                    key = f"{partition('bench', 'memory_manager', at, split)}{name}"
                    aws.s3().put_object(Bucket=settings().interaction_bucket, Key=key, Body=body)
                    size += len(body)
            return size

        size = timed(f"log {n:,} decisions x {candidates} candidates to S3 (setup)", 1, write)
        print(f"  -> {size / 1e6:,.1f} MB of {log_format}")
        result = timed(
            f"compare end to end ({n:,} decisions x {candidates} candidates, embedded stack)",
            repeat,
            lambda: container.comparisons().compare(
                "bench", "memory_manager", base, cand, window_hours=2
            ),
        )
        body = result.to_dict()
        steps = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items())
        print(f"  -> {body['recommendation']}, n {body['n_samples']:,}, lift "
              f"{body['lift']['absolute']:+.4f} [{body['lift']['ci_low']:+.4f}, "
              f"{body['lift']['ci_high']:+.4f}], ESS {body['effective_sample_size']:,.0f}; "
              f"last run: {steps}")  # fmt: skip
    finally:
        container.reset()
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--train", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--e2e-decisions", type=int, default=100_000)
    parser.add_argument("--e2e-candidates", type=int, default=20)
    parser.add_argument("--e2e-format", choices=["parquet", "jsonl"], default="parquet")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--only-e2e", action="store_true")
    args = parser.parse_args()
    if not args.only_e2e:
        bench_estimators(args.decisions, args.repeat, args.bootstrap)
        bench_training(args.train, max(1, args.repeat // 2))
    if not args.skip_e2e:
        bench_compare_e2e(
            args.e2e_decisions, args.e2e_candidates, max(1, args.repeat // 2), args.e2e_format
        )


if __name__ == "__main__":
    main()
