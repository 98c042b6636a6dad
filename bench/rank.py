"""The rank handler, warm and in-process, against raw onnxruntime on the same matrix.

100 candidates, 32 input features in all (8 context + 23 item + the retrieval score), a
32→64→1 MLP policy in production. The handler runs as in AWS: its metrics are EMF documents
written to stdout (here /dev/null); the log sink's network call is excluded (an in-memory
sink). Cold start is measured in a fresh process against the embedded AWS server: import of
the handler + the first decision (pointer read, artifact load).

    python -m bench.rank [--iterations 3000]
Targets (issue 12): p50 ≤ 10x raw p50, p99 ≤ 3x own p50, cold start ≤ 1.5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from policyhub.domain.interaction_records import InteractionRecord

ROOT = Path(__file__).resolve().parents[1]
CONTEXT_DIM, ITEM_DIM, N = 8, 23, 100


def request_body(seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {"context": {"features": rng.normal(size=CONTEXT_DIM).round(4).tolist()},
            "candidates": [{"id": f"doc-{i}", "retrieval_score": float(round(1 - i / N, 4)),
                            "features": rng.normal(size=ITEM_DIM).round(4).tolist()}
                           for i in range(N)],
            "routing_key": "bench-user"}


def _pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q))


class _CountingSink:
    """Counts records and keeps the last: Firehose's client sends and frees them, and a list of
    thousands of 100-candidate records would only slow the garbage collector here."""

    def __init__(self) -> None:
        self.count = 0
        self.last: InteractionRecord | None = None

    def put(self, record: InteractionRecord) -> None:
        self.count += 1
        self.last = record


def warm(iterations: int) -> dict[str, float]:
    from moto import mock_aws

    from infra.local.embedded_aws import aws_environment
    from infra.local.events import LambdaContext, proxy_event
    from infra.local.functions import load_handler
    from infra.local.resources import create_all
    from policyhub.adapters import aws
    from policyhub.adapters.emf_metrics import EmfServingMetrics
    from policyhub.api import container
    from policyhub.api.rank_json import read_body
    from policyhub.api.routes import route
    from policyhub.domain.access import Role, Tier
    from policyhub.domain.serving import RankRequest
    from policyhub.domain.versions import FeatureSchema
    from policyhub.ml.features import assemble_features
    from policyhub.ml.onnx_models import random_mlp_policy

    os.environ.update({k: v for k, v in aws_environment("").items() if k != "AWS_ENDPOINT_URL"})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws(), contextlib.ExitStack() as stack:
        aws.reset_clients()
        container.reset()
        create_all()
        key, _ = container.keys().create("bench", Tier.PRO, Role.ADMIN)
        from policyhub.domain.access import Principal

        admin = Principal("bench", key.key_id, Tier.PRO, Role.ADMIN)
        schema = FeatureSchema(context_dim=CONTEXT_DIM, item_dim=ITEM_DIM)
        v = container.registry().register(admin, "bench", "memory_manager",
                                          random_mlp_policy(schema.input_dim, 64, seed=3), schema)
        container.registry().promote_immediate(admin, "memory_manager", v.version, None)
        service = container.rank_service()
        sink = _CountingSink()
        service._sink = sink  # the network call to Firehose is not part of the handler's cost
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
        service._metrics = EmfServingMetrics()  # AWS's metrics, not the local stack's moto puts
        handler = load_handler("rank")
        body = json.dumps(request_body())
        r = route("rank")
        ctx = LambdaContext("rank")

        def event() -> dict[str, Any]:
            return proxy_event(r, r.path, {}, headers={"content-type": "application/json"},
                               body=body, authorizer=admin.as_context())

        devnull = stack.enter_context(open(os.devnull, "w"))
        stack.enter_context(contextlib.redirect_stdout(devnull))
        for _ in range(200):
            assert handler(event(), ctx)["statusCode"] == 200
        req = RankRequest.model_validate_json(body)
        matrix = assemble_features(req.context.features, [c["features"] for c in req.candidates],
                                   [c["retrieval_score"] for c in req.candidates], schema)
        session = service._sessions.get(v.artifact.sha256)
        assert session is not None
        raw_session = session._session  # the bare onnxruntime session
        feeds = {session._input_name: matrix}
        handler_us: list[float] = []
        raw_us: list[float] = []
        parts: dict[str, list[float]] = {"parse_validate": [], "route": [], "score": [],
                                         "constraints": [], "log": [], "respond": []}
        for _ in range(iterations):
            e = event()
            t0 = time.perf_counter()
            out = handler(e, ctx)
            total = time.perf_counter() - t0
            handler_us.append(total * 1e6)
            t0 = time.perf_counter()
            raw_session.run(None, feeds)
            raw_us.append((time.perf_counter() - t0) * 1e6)
            assert out["statusCode"] == 200
            timings = service.timings
            t0 = time.perf_counter()
            read_body(RankRequest, body)  # what the handler parses with
            parse = time.perf_counter() - t0
            parts["parse_validate"].append(parse * 1e6)
            for k in ("route", "score", "constraints", "log"):
                parts[k].append(timings[k] * 1e6)
            parts["respond"].append(max(0.0, total - parse - sum(timings.values())) * 1e6)
        assert sink.last is not None and sink.last["policy_version"] == v.version
        assert sink.count == iterations + 200
        container.reset()
    return {
        "handler_p50_us": _pct(handler_us, 50), "handler_p99_us": _pct(handler_us, 99),
        "raw_p50_us": _pct(raw_us, 50), "raw_p99_us": _pct(raw_us, 99),
        **{f"{k}_p50_us": statistics.median(v) for k, v in parts.items()},
        "logged_records": float(sink.count),
    }


COLD = r"""
import json, os, sys, time
t0 = time.perf_counter()
sys.path.insert(0, os.environ["BENCH_ROOT"])
from infra.local.functions import load_handler
from infra.local.events import proxy_event, LambdaContext
from policyhub.api.routes import route
handler = load_handler("rank")
r = route("rank")
event = proxy_event(r, r.path, {}, body=os.environ["BENCH_BODY"],
                    authorizer=json.loads(os.environ["BENCH_PRINCIPAL"]))
out = handler(event, LambdaContext("rank"))
elapsed = time.perf_counter() - t0
assert out["statusCode"] == 200, out
print(json.dumps({"cold_start_s": elapsed, "variant": json.loads(out["body"])["variant"]}))
"""




def cold_start(runs: int = 3) -> dict[str, float]:
    from infra.local.embedded_aws import EmbeddedAws, aws_environment, free_port
    from infra.local.resources import create_all
    from policyhub.api import container
    from policyhub.domain.access import Principal, Role, Tier
    from policyhub.domain.versions import FeatureSchema
    from policyhub.ml.onnx_models import random_mlp_policy

    embedded = EmbeddedAws("127.0.0.1", free_port()).start()
    try:
        create_all()
        key, _ = container.keys().create("bench", Tier.PRO, Role.ADMIN)
        admin = Principal("bench", key.key_id, Tier.PRO, Role.ADMIN)
        schema = FeatureSchema(context_dim=CONTEXT_DIM, item_dim=ITEM_DIM)
        v = container.registry().register(admin, "bench", "memory_manager",
                                          random_mlp_policy(schema.input_dim, 64, seed=3), schema)
        container.registry().promote_immediate(admin, "memory_manager", v.version, None)
        env = {**os.environ, **aws_environment(embedded.endpoint), "BENCH_ROOT": str(ROOT),
               "BENCH_BODY": json.dumps(request_body()),
               "BENCH_PRINCIPAL": json.dumps(admin.as_context()),
               "POLICYHUB_CURSOR_SECRET": os.environ["POLICYHUB_CURSOR_SECRET"]}
        results = []
        for _ in range(runs):
            out = subprocess.run([sys.executable, "-c", COLD], env=env, capture_output=True,
                                 text=True, check=True, cwd=ROOT)
            results.append(json.loads(out.stdout.strip().splitlines()[-1])["cold_start_s"])
        container.log_sink()
        container.reset()
        return {"cold_start_median_s": statistics.median(results),
                "cold_start_max_s": max(results)}
    finally:
        embedded.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=3000)
    args = parser.parse_args()
    w = warm(args.iterations)
    c = cold_start()
    ratio = w["handler_p50_us"] / w["raw_p50_us"]
    tail = w["handler_p99_us"] / w["handler_p50_us"]
    print("rank handler, warm, in-process (100 candidates x 32 features, 32-64-1 MLP)")
    print(f"  handler      p50 {w['handler_p50_us']:8.1f} us   p99 {w['handler_p99_us']:8.1f} us")
    print(f"  raw ORT run  p50 {w['raw_p50_us']:8.1f} us   p99 {w['raw_p99_us']:8.1f} us")
    print(f"  ratio p50 handler/raw = {ratio:.1f}x (target <= 10x)   "
          f"p99/p50 = {tail:.2f} (target <= 3)")
    print("  breakdown p50: " + ", ".join(
        f"{k} {w[f'{k}_p50_us']:.0f} us" for k in
        ("parse_validate", "route", "score", "constraints", "log", "respond")))
    print(f"  cold start (import + first decision, fresh process): median "
          f"{c['cold_start_median_s']:.2f} s, max {c['cold_start_max_s']:.2f} s (target <= 1.5 s)")


if __name__ == "__main__":
    main()
