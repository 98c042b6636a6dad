"""A rollout controller look on the local stack: LogHealthReader.read over one hour of logs.

    .venv/bin/python -m bench.log_health_look [--rate 1000] [--seconds 3600] [--objects 3600]
        [--candidates 10] [--repeat 5]

Target: <= 2 s for a 1-hour window at 1,000 decisions/s (3.6M decisions and their feedback).
The records are made with DuckDB straight into Parquet objects of `interaction_columns.COLUMNS`
(10% canary, 1% failed, 5% with violations, a decision's feedback beside it) and put into the
embedded stack's bucket (moto's server) under the local sink's names, one flush per `--objects`
(`3600` is one a second, as the sink flushes at 2,000 records), each flush an object per side
of the held-out split, as the sink writes them (decision 131). The first look fetches
every object; later looks find them in the reader's cache, as the controller's repeated looks
at a growing window do. Prints the median of each and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from policyhub.domain.holdout import HOLDOUT_FRACTION, SPLITS
from policyhub.domain.interaction_columns import COLUMNS
from policyhub.domain.interaction_columns import duckdb as duckdb_type
from policyhub.ml.dataset import holdout_sql


def _expressions(candidates: int) -> dict[str, str]:
    d = "i % 2 = 0"  # even rows are decisions, the next row is their feedback
    n = "(i // 2)"
    canary = f"{n} % 10 = 0"
    variant = f"CASE WHEN {canary} THEN 'canary' ELSE 'production' END"
    version = f"CASE WHEN {canary} THEN 'v1.0.2' ELSE 'v1.0.1' END"
    return {
        "type": f"CASE WHEN {d} THEN 'decision' ELSE 'feedback' END",
        "tenant_id": "'bench'",
        "agent_type": "'memory_manager'",
        "decision_id": f"'d-' || {n}::VARCHAR",
        "seed_key": f"'d-' || {n}::VARCHAR",
        "at": f"strftime($start + to_microseconds(({n} * 1000000) // $rate), "
        "'%Y-%m-%dT%H:%M:%S.%fZ')",
        "policy_version": version,
        "variant": variant,
        "rollout_id": "'r-bench'",
        "assigned": f"CASE WHEN {d} THEN {{'variant': {variant}, 'policy_version': {version}}} END",
        "use_rl_ranking": f"CASE WHEN {d} THEN true END",
        "context": f"CASE WHEN {d} THEN [hash(i, k) % 1000 / 1000.0 for k in range(8)] END",
        "candidates": f"""CASE WHEN {d} THEN [{{'id': 'c' || j, 'retrieval_score': 1 - j / 20,
            'features': [hash(i, j, k) % 1000 / 1000.0 for k in range(8)]}}
            for j in range({candidates})] END""",
        "ranking": f"CASE WHEN {d} THEN ['c' || j for j in range({candidates})] END",
        "proposed": f"CASE WHEN {d} THEN ['c' || j for j in range({candidates})] END",
        "chosen_id": f"CASE WHEN {d} THEN 'c0' END",
        "propensity": f"CASE WHEN {d} THEN 0.9 END",
        "exploration": f"CASE WHEN {d} THEN {{'epsilon': 0.1, 'temperature': 0.5}} END",
        "latency_ms": f"CASE WHEN {d} THEN 5 + hash(i) % 20000 / 1000.0 END",
        "failed_version": f"CASE WHEN {d} AND {n} % 100 = 7 THEN {version} END",
        "violations": f"CASE WHEN {d} THEN CASE WHEN {n} % 20 = 3 "
        "THEN MAP {'pinned': 1} ELSE MAP {} END END",
        "success": f"CASE WHEN NOT ({d}) THEN hash(i) % 100 < 95 END",
        "clicked_ids": f"CASE WHEN NOT ({d}) THEN [] END",
    }


def make_objects(folder: Path, start: datetime, rate: int, seconds: int, objects: int,
                 candidates: int) -> list[Path]:  # fmt: skip
    records = 2 * rate * seconds
    exprs = _expressions(candidates)
    select = ", ".join(
        f"CAST({exprs.get(name, 'NULL')} AS {duckdb_type(t)}) AS \"{name}\""
        for name, t in COLUMNS.items()
    )
    paths = []
    with duckdb.connect() as con:
        for f in range(objects):
            low, high = f * records // objects, (f + 1) * records // objects
            for split in SPLITS:  # the sink writes each side of a flush to its own object
                path = folder / f"{f:06d}-{split}.parquet"
                side = holdout_sql(HOLDOUT_FRACTION, held_out=split == "holdout")
                con.execute(
                    f"COPY (SELECT * FROM (SELECT {select} FROM range({low}, {high}) AS r(i)) "
                    f"WHERE {side}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)",
                    {"start": start.replace(tzinfo=None), "rate": rate},
                )
                paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=1000, help="decisions per second")
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--objects", type=int, default=3600)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()


    from infra.local.embedded_aws import EmbeddedAws, free_port
    from infra.local.resources import create_all
    from policyhub.adapters import aws
    from policyhub.adapters.interaction_log_reader import S3InteractionLog
    from policyhub.adapters.interaction_logs import local_object_key, partition
    from policyhub.domain.health import HealthReadFailed
    from policyhub.domain.rollout import PipelineConfig, RolloutStep, RolloutStrategy, Stage
    from policyhub.domain.state_changes import start_rollout
    from policyhub.services.health_reader import LogHealthReader
    from policyhub.settings import settings

    stack = EmbeddedAws("127.0.0.1", free_port()).start()
    try:
        create_all()
        bucket = settings().interaction_bucket
        end = datetime.now(UTC).replace(microsecond=0)
        start = end - timedelta(seconds=args.seconds)
        with tempfile.TemporaryDirectory() as folder:
            began = time.perf_counter()
            paths = make_objects(Path(folder), start, args.rate, args.seconds, args.objects,
                                 args.candidates)  # fmt: skip
            size = sum(p.stat().st_size for p in paths)
            made = time.perf_counter() - began
            for k, path in enumerate(paths):
                flush = k // len(SPLITS)
                written = start + timedelta(seconds=(flush + 1) * args.seconds / args.objects)
                split = next(s for s in SPLITS if path.stem.endswith(f"-{s}"))
                key = local_object_key(partition("bench", "memory_manager", written, split),
                                       int(written.timestamp() * 1000))  # fmt: skip
                aws.s3().put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        print(f"setup: {args.rate * args.seconds:,} decisions x {args.candidates} candidates "
              f"and their feedback in {len(paths):,} objects ({args.objects:,} flushes), "
              f"{size / 1e6:,.0f} MB of Parquet (made in {made:.0f} s, put in "
              f"{time.perf_counter() - began - made:.0f} s)")
        step = RolloutStep(stage=Stage.CANARY, traffic_percent=10, started_at=start)
        rollout = start_rollout(
            rollout_id="r-bench", tenant_id="bench", agent_type="memory_manager",
            candidate_version="v1.0.2", baseline_version="v1.0.1",
            strategy=RolloutStrategy.CANARY, config=PipelineConfig(), now=start,
        ).model_copy(update={"steps": (step,), "traffic_percent": 10})  # fmt: skip
        # LastModified is the put time, after every record: the slack covers the whole setup.
        log = S3InteractionLog(bucket, slack=timedelta(hours=2), max_cached_bytes=size * 2,
                               written_by_local_sink=True)  # as the local controller's
        reader = LogHealthReader(log)
        # The controller's window ends now; the records were stamped up to `end`.
        window = (start, end)
        began = time.perf_counter()
        health = reader.read(rollout, *window)
        cold = time.perf_counter() - began
        looks = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            health = reader.read(rollout, *window)
            looks.append(time.perf_counter() - began)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{'controller look, first (fetches every object)':<58} {cold:7.3f} s  "
              f"({log.fetches:,} objects)")
        print(f"{'controller look, cached objects':<58} median "
              f"{statistics.median(looks):7.3f} s  (n={args.repeat})")
        if isinstance(health, HealthReadFailed):
            raise SystemExit(f"the look failed: {health.error}")
        for side, found in (("baseline", health.baseline), ("candidate", health.candidate)):
            print(f"  -> {side}: {found}")
        print(f"  -> peak RSS {rss:,.0f} MB")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
