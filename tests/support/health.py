"""Comparing the Health two readers give for the same traffic."""

from __future__ import annotations

from policyhub.domain import latency_buckets
from policyhub.domain.health import VariantHealth

COUNTS = ("requests", "errors", "feedback_successes", "feedback_failures",
          "constraint_violations", "shadow_decisions", "shadow_errors")  # fmt: skip
PERCENTILES = ("latency_p50_ms", "latency_p93_ms", "latency_p95_ms", "latency_p97_ms")


def assert_same(from_metrics: VariantHealth | None, from_logs: VariantHealth | None) -> None:
    """Equal counts; each latency percentile from the bucket sums within one bucket's relative
    width of the exact one (both absent, or both present)."""
    assert from_metrics is not None and from_logs is not None
    for name in COUNTS:
        assert getattr(from_metrics, name) == getattr(from_logs, name), name
    for name in PERCENTILES:
        got, exact = getattr(from_metrics, name), getattr(from_logs, name)
        assert (got is None) == (exact is None), name
        if exact is not None:
            bound = latency_buckets.RELATIVE_WIDTH * exact * (1 + 1e-9)
            assert abs(got - exact) <= bound, (name, got, exact)
