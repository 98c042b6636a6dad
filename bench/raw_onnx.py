"""Raw onnxruntime latency: the yardstick serving targets are expressed against.

Times bare `InferenceSession.run` of the 32→64→1 MLP on a 100x32 float32 matrix, with the same
session options the serving path uses, so `bench/rank.py` can report the rank handler as a
multiple of it (target: ≤ 10x p50, issue 12) on whatever machine runs it.

    python -m bench.raw_onnx [--iterations 5000]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from policyhub.ml.onnx_models import INPUT_NAME, OUTPUT_NAME, random_mlp_policy
from policyhub.ml.scoring import create_session

N_CANDIDATES = 100
INPUT_DIM = 32
HIDDEN_DIM = 64


@dataclass(frozen=True)
class RawOnnxTiming:
    p50_us: float
    p99_us: float
    iterations: int


def raw_session_run_percentiles(
    iterations: int = 5000,
    warmup: int = 200,
    n_candidates: int = N_CANDIDATES,
    input_dim: int = INPUT_DIM,
    hidden_dim: int = HIDDEN_DIM,
    seed: int = 0,
) -> RawOnnxTiming:
    session = create_session(random_mlp_policy(input_dim, hidden_dim, seed=seed))
    matrix = np.random.default_rng(seed).standard_normal((n_candidates, input_dim))
    feed = {INPUT_NAME: matrix.astype(np.float32)}
    outputs = [OUTPUT_NAME]
    for _ in range(warmup):
        session.run(outputs, feed)
    samples = np.empty(iterations, dtype=np.float64)
    clock = time.perf_counter_ns
    for i in range(iterations):
        start = clock()
        session.run(outputs, feed)
        samples[i] = clock() - start
    p50, p99 = np.percentile(samples, [50, 99]) / 1000.0
    return RawOnnxTiming(p50_us=float(p50), p99_us=float(p99), iterations=iterations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=5000)
    args = parser.parse_args()
    timing = raw_session_run_percentiles(iterations=args.iterations)
    print(
        f"raw session.run {N_CANDIDATES}x{INPUT_DIM} on {INPUT_DIM}->{HIDDEN_DIM}->1 MLP: "
        f"p50 {timing.p50_us:.1f} us, p99 {timing.p99_us:.1f} us ({timing.iterations} runs)"
    )


if __name__ == "__main__":
    main()
