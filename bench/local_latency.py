"""Measure this machine's own rank latency during a local rollout (the local canary simulation's
latency model).

Starts the local stack (`python -m infra.local up`, as `make up` does) on free ports, holds a
50 % canary of `memory_manager` v1.2.5 against production v1.2.4 open (so the rollout
controller looks at it all the time, as during a real rollout), plays `policyhub --local
traffic` at `--rps` from its own process, then reads back the `latency_ms` the rank handler
logged for the rollout's decisions. Writes them, one per line, under a header that says how
and when they were measured, to bench/data/local_rank_latency_ms.txt; prints the p50/p95/p99
of each variant (the two versions have the same network shape, so their p95 ratio is what an
equal candidate looks like here).

    python -m bench.local_latency --seconds 240 --rps 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import numpy as np
import requests

from bench.canary_sim import LOCAL_LATENCY_FILE
from infra.local.children import wait_until_answers
from infra.local.embedded_aws import free_port

ROOT = Path(__file__).resolve().parents[1]
HOLD = {"canary_steps": [50, 100], "step_seconds": 86_400, "max_step_seconds": 86_400,
        "min_samples_per_step": 10_000_000}




def _latencies(local_dir: Path, rollout_id: str) -> dict[str, list[float]]:
    info = json.loads((local_dir / "stack.json").read_text())
    s3 = boto3.client("s3", endpoint_url=info["aws_endpoint"], region_name=info["region"],
                      aws_access_key_id="local", aws_secret_access_key="local")
    bucket = info["resources"]["POLICYHUB_INTERACTION_BUCKET"]
    found: dict[str, list[tuple[str, float]]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            for line in body.splitlines():
                record = json.loads(line)
                if record.get("type") == "decision" and record.get("rollout_id") == rollout_id:
                    variant = (record.get("assigned") or {}).get("variant", "production")
                    found.setdefault(variant, []).append((record["at"], record["latency_ms"]))
    return {k: [ms for _, ms in sorted(v)] for k, v in found.items()}


def measure(seconds: float, rps: float, stack_env: dict[str, str] | None = None
            ) -> tuple[dict[str, list[float]], str]:
    api_port, aws_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="policyhub-latency-") as tmp:
        local_dir = Path(tmp)
        env = {**os.environ, "POLICYHUB_PORT": str(api_port),
               "POLICYHUB_AWS_PORT": str(aws_port), "POLICYHUB_LOCAL_DIR": str(local_dir),
               **(stack_env or {})}
        stack = subprocess.Popen([sys.executable, "-m", "infra.local", "up"], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{api_port}/v1"
            wait_until_answers(f"{base}/health", stack, "local stack", timeout=300)
            key = (local_dir / "admin-key").read_text()
            r = requests.post(f"{base}/policies/promote", timeout=30,
                              headers={"Authorization": f"Bearer {key}"},
                              json={"version": "v1.2.5", "strategy": "canary", "pipeline": HOLD})
            r.raise_for_status()
            rollout_id = r.json()["rollout_id"]
            subprocess.run([str(Path(sys.executable).with_name("policyhub")), "--local", "traffic",
                            "--rps", str(rps), "--duration", str(seconds)],
                           cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            time.sleep(2)  # the local log sink writes every 0.5 s
            return _latencies(local_dir, rollout_id), rollout_id
        finally:
            stack.terminate()
            stack.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--output", type=Path, default=LOCAL_LATENCY_FILE)
    parser.add_argument("--env", action="append", default=[],
                        help="NAME=VALUE for the stack (e.g. POLICYHUB_LOCAL_TICK_SECONDS=2)")
    args = parser.parse_args()
    stack_env = dict(item.split("=", 1) for item in args.env)
    by_variant, rollout_id = measure(args.seconds, args.rps, stack_env)
    lines = []
    for variant, values in sorted(by_variant.items()):
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        lines.append(f"{variant}: {len(values)} decisions, p50 {p50:.3f} ms, p95 {p95:.3f} ms, "
                     f"p99 {p99:.3f} ms")
    for line in lines:
        print(line)
    production = by_variant.get("production", [])
    canary = by_variant.get("canary", [])
    if production and canary:
        ratio = np.percentile(canary, 95) / np.percentile(production, 95)
        print(f"canary/production p95: x{ratio:.3f}")
    header = [
        f"# rank latency_ms logged by the local stack on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({os.cpu_count()} cores), production's decisions of a held 50 % canary",
        f"# (rollout {rollout_id}), {args.rps:g} visits/s of `policyhub --local traffic` for "
        f"{args.seconds:g} s; made by `python -m bench.local_latency`",
        *(f"# {line}" for line in lines),
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join([*header, *(f"{v:.3f}" for v in production)]) + "\n")
    print(f"wrote {len(production)} latencies to {args.output}")


if __name__ == "__main__":
    main()
