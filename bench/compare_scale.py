"""Compare at scale: the compare service over millions of logged decisions, time and memory.

    .venv/bin/python -m bench.compare_scale [--decisions 10000000] [--per-object 50000]
        [--candidates 20] [--repeat 1]

Target (issue 12): compare on 10M decisions (20 candidates, context and item dims 8) <= 60 s
within 10 GB of memory. The logs are written as Firehose would deliver them (Parquet objects of
`--per-object` decisions and their feedback, `bench.synthetic_logs`) to S3 on the embedded stack
(moto's server in a child process, as `make up` runs it), then `compare` runs in a fresh child
process, so the peak resident memory it reports (ru_maxrss) is the compare's alone: the
generator's and moto's are not counted. Prints the setup time, each step of the service's
`timings` (read_logs split into fetching the objects and DuckDB's part), the total and the
peak RSS, with a coarse memory profile (when the peak was reached).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

TENANT, AGENT = "bench", "memory_manager"
DIMS = 8


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class MemoryTrace:
    """The process's resident memory every `every` seconds, to tell which step peaks."""

    def __init__(self, every: float = 0.25) -> None:
        self.samples: list[tuple[float, int]] = []
        self._every = every
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.samples.append((time.perf_counter() - self._started, _rss_bytes()))

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join()
        return self.samples


def child(baseline: str, candidate: str, window_hours: int) -> None:
    """One compare in this (fresh) process; prints its timings and peak memory as JSON."""
    from policyhub.api import container

    trace = MemoryTrace()
    service = container.comparisons()
    logs = service._logs  # the bench splits read_logs: fetching the objects, then DuckDB
    fetch = {"seconds": 0.0}
    opened = logs.table

    def timed_table(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return opened(*args, **kwargs)
        finally:
            fetch["seconds"] += time.perf_counter() - started

    logs.table = timed_table  # type: ignore[method-assign]
    started = time.perf_counter()
    result = service.compare(TENANT, AGENT, baseline, candidate, window_hours=window_hours)
    total = time.perf_counter() - started
    samples = trace.stop()
    body = result.to_dict()
    peak_at = max(samples, key=lambda s: s[1])[0] if samples else 0.0
    print(json.dumps({
        "total": total,
        "timings": result.timings,
        "fetch_objects": fetch["seconds"],
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "peak_at": peak_at,
        "n_samples": body["n_samples"],
        "recommendation": body["recommendation"],
        "lift": body["lift"],
        "ess": body["effective_sample_size"],
        "profile": [(round(t, 1), round(r / 2**30, 2))
                    for t, r in samples[:: max(1, len(samples) // 40)]],
    }))  # fmt: skip


def generate(
    folder: str, n: int, per_object: int, candidates: int, after: datetime, end: datetime
) -> Iterator[str]:
    """n decisions x `candidates` (and their feedback) in Parquet files of `per_object`
    decisions in `folder`, spread evenly in (after, end), each chunk's held-out and training
    decisions in a file of their own (`<chunk>-<split>.parquet`, as the sinks write them);
    yields each file when written."""
    from bench.synthetic_logs import write_records_parquet
    from policyhub.domain.holdout import SPLITS
    from policyhub.ml.scorers import retrieval_scorer
    from policyhub.ml.simulator import BanditSimulator, SimulatorConfig

    config = SimulatorConfig(context_dim=DIMS, item_dim=DIMS, n_candidates=candidates, seed=5)
    sim = BanditSimulator(config)
    for c, first in enumerate(range(0, n, per_object)):
        data = sim.log_dataset(min(per_object, n - first), retrieval_scorer, seed=1000 + c)
        scores = retrieval_scorer(data.features)
        for split in SPLITS:
            path = str(Path(folder) / f"{c:06d}-{split}.parquet")
            write_records_parquet(
                data, scores, path, tenant_id=TENANT, agent_type=AGENT,
                after=after, end=end, first=first, total=n, split=split,
            )  # fmt: skip
            yield path


def upload(paths: Iterable[str], keep: bool) -> int:
    """The files to the interaction bucket, as Firehose names its objects; their bytes."""
    from concurrent.futures import Future, ThreadPoolExecutor

    from policyhub.adapters import aws
    from policyhub.adapters.interaction_logs import partition
    from policyhub.adapters.log_table import stamps
    from policyhub.domain.holdout import SPLITS
    from policyhub.settings import settings

    bucket = settings().interaction_bucket

    def put(path: str) -> int:
        first, _ = stamps(path)
        at = datetime.fromisoformat(str(first).replace("Z", "+00:00"))
        split = next(s for s in SPLITS if Path(path).stem.endswith(f"-{s}"))
        key = f"{partition(TENANT, AGENT, at, split)}bench-{Path(path).stem}.parquet"
        size = os.path.getsize(path)
        with open(path, "rb") as body:
            aws.s3().put_object(Bucket=bucket, Key=key, Body=body)
        if not keep:
            os.unlink(path)
        return size

    size = 0
    with ThreadPoolExecutor(2) as pool:
        pending: list[Future[int]] = []
        for path in paths:
            pending.append(pool.submit(put, path))
            while len(pending) > 2:
                size += pending.pop(0).result()
        size += sum(p.result() for p in pending)
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--decisions", type=int, default=10_000_000)
    parser.add_argument("--per-object", type=int, default=50_000)
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--generate-to", metavar="FOLDER",
                        help="only write the objects to FOLDER (for --from), stamped now")
    parser.add_argument("--from", dest="source", metavar="FOLDER",
                        help="upload the objects of --generate-to instead of generating them")
    parser.add_argument("--window-hours", type=int, default=0,
                        help="compare's window (default: 2 h + the setup's time)")
    parser.add_argument("--child", nargs=3, metavar=("BASELINE", "CANDIDATE", "HOURS"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return

    from infra.local.embedded_aws import EmbeddedAwsProcess, free_port
    from infra.local.resources import create_all
    from policyhub.api import container
    from policyhub.domain.versions import FeatureSchema
    from policyhub.ml.onnx_models import linear_policy
    from policyhub.ml.scorers import retrieval_scorer
    from policyhub.ml.simulator import BanditSimulator, SimulatorConfig
    from policyhub.ml.trainer import train_policy

    n, k = args.decisions, args.candidates
    # moto's copy of every object and the reader's local copy (880 bytes a decision at 20
    # candidates), and room to spare
    need = 2.5 * 880 * n * k / 20
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if not args.generate_to and free < need:
        raise SystemExit(f"{need / 2**30:,.0f} GiB of disk needed in {tempfile.gettempdir()}, "
                         f"{free / 2**30:,.0f} GiB free")  # fmt: skip
    now = datetime.now(UTC)
    after, end = now - timedelta(minutes=31), now - timedelta(minutes=1)
    if args.generate_to:
        os.makedirs(args.generate_to, exist_ok=True)
        started = time.perf_counter()
        for _ in generate(args.generate_to, n, args.per_object, k, after, end):
            pass
        print(f"wrote {n:,} decisions to {args.generate_to} in "
              f"{time.perf_counter() - started:,.0f} s")  # fmt: skip
        return
    stack = EmbeddedAwsProcess("127.0.0.1", free_port()).start()
    try:
        create_all()
        schema = FeatureSchema(context_dim=DIMS, item_dim=DIMS)
        config = SimulatorConfig(context_dim=DIMS, item_dim=DIMS, n_candidates=k, seed=5)
        sim = BanditSimulator(config)
        trained = train_policy(sim.log_dataset(20_000, retrieval_scorer, seed=9)).artifact
        registry = container.registry()
        retrieval = linear_policy([0.0] * (schema.input_dim - 1) + [1.0])
        base = registry.register(None, TENANT, AGENT, retrieval, schema).version
        cand = registry.register(None, TENANT, AGENT, trained, schema).version
        started = time.perf_counter()
        if args.source:
            files = sorted(str(p) for p in Path(args.source).glob("*.parquet"))
            size = upload(files, keep=True)
        else:
            folder = tempfile.mkdtemp(prefix="bench-scale-")
            try:
                size = upload(generate(folder, n, args.per_object, k, after, end), keep=False)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        setup = time.perf_counter() - started
        print(f"log {n:,} decisions x {k} candidates to S3 (setup): {setup:,.1f} s, "
              f"{size / 1e9:,.2f} GB of Parquet")  # fmt: skip
        hours = args.window_hours or 2 + int(setup // 3600)
        runs = []
        for _ in range(args.repeat):
            found = subprocess.run(
                [sys.executable, "-m", "bench.compare_scale", "--child", base, cand, str(hours)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            runs.append(json.loads(found.stdout.strip().splitlines()[-1]))
            r = runs[-1]
            steps = ", ".join(f"{s} {v:.2f} s" for s, v in r["timings"].items())
            print(f"  run: total {r['total']:.2f} s ({steps}; of read_logs, fetching the "
                  f"objects {r['fetch_objects']:.2f} s), peak RSS {r['maxrss'] / 2**30:.2f} GiB "
                  f"at {r['peak_at']:.1f} s; n {r['n_samples']:,}, {r['recommendation']}, "
                  f"lift {r['lift']['absolute']:+.4f} [{r['lift']['ci_low']:+.4f}, "
                  f"{r['lift']['ci_high']:+.4f}], ESS {r['ess']:,.0f}")  # fmt: skip
            print(f"  memory (s, GiB): {r['profile']}")
        print(f"compare end to end ({n:,} decisions x {k} candidates, embedded stack): "
              f"median {statistics.median(r['total'] for r in runs):.2f} s, peak RSS "
              f"{max(r['maxrss'] for r in runs) / 2**30:.2f} GiB (n={len(runs)})")  # fmt: skip
    finally:
        container.reset()
        stack.stop()


if __name__ == "__main__":
    main()
