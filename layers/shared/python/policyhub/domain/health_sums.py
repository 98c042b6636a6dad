"""The `Health` a reader makes of a rollout's metric sums over a window (decision 119): the
same attribution as `services.health_reader.LogHealthReader`, and one excess-violation rule
for both readers. Apart from `health_metrics` so the rank path, which only counts, does not
import the rollout model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from policyhub.domain import latency_buckets
from policyhub.domain.health import HealthWindow, VariantHealth
from policyhub.domain.health_metrics import (
    ERRORS,
    FAILURES,
    PERCENTILES,
    REQUESTS,
    SHADOW,
    SHADOW_ERRORS,
    SUCCESSES,
    VARIANTS,
    VIOLATING,
)

if TYPE_CHECKING:
    from policyhub.domain.rollout import Rollout


def excess_violating(
    candidate_violating: int, candidate_requests: int, baseline_violating: int,
    baseline_requests: int,
) -> int:  # fmt: skip
    """Decisions with violations beyond what production's rate explains (about 3 sigma).

    Any policy "violates" pinned positions and blocked items it cannot know about; only a
    clearly higher rate than production's is the candidate's fault.
    """
    if candidate_requests == 0:
        return 0
    rate = baseline_violating / baseline_requests if baseline_requests else 0.0
    expected = rate * candidate_requests
    threshold = expected + 3 * math.sqrt(max(expected, 1.0)) + 1
    return max(0, math.ceil(candidate_violating - threshold))


Sums = Mapping[tuple[str, str], float]
"""(variant, metric name) -> its sum over the window; a missing key is 0."""


class _Side:
    """One side's sums (the candidate's or the baseline's), over the variants that are its."""

    def __init__(self, sums: Sums, variants: tuple[str, ...]) -> None:
        self._sums, self._variants = sums, variants

    def count(self, name: str) -> int:
        return round(sum(self._sums.get((v, name), 0.0) for v in self._variants))

    def decade_counts(self) -> list[int]:
        return [self.count(name) for name in latency_buckets.DECADE_NAMES]

    def health(
        self, fine_decades: Iterable[int], excess: int = 0, shadow: int = 0,
        shadow_errors: int = 0,
    ) -> VariantHealth:  # fmt: skip
        decades = list(fine_decades)
        fine = {
            b: self.count(latency_buckets.NAMES[b])
            for d in decades for b in latency_buckets.buckets_of_decade(d)
        }  # fmt: skip
        histogram = latency_buckets.segments(self.decade_counts(), fine, decades)
        p50, p93, p95, p97 = latency_buckets.percentiles_of(histogram, PERCENTILES) or (
            None, None, None, None,
        )  # fmt: skip
        return VariantHealth(
            requests=self.count(REQUESTS),
            errors=self.count(ERRORS),
            feedback_successes=self.count(SUCCESSES),
            feedback_failures=self.count(FAILURES),
            latency_p95_ms=p95,
            latency_p50_ms=p50,
            latency_p93_ms=p93,
            latency_p97_ms=p97,
            constraint_violations=excess,
            shadow_decisions=shadow,
            shadow_errors=shadow_errors,
        )


def _sides(rollout: Rollout, sums: Sums) -> tuple[_Side, _Side, _Side]:
    """(candidate, baseline, both variants): during the post-promotion watch every variant is
    the candidate's (production *is* the candidate)."""
    if rollout.watching:
        cand, base = _Side(sums, VARIANTS), _Side(sums, ())
    else:
        cand, base = _Side(sums, ("canary",)), _Side(sums, ("production",))
    return cand, base, _Side(sums, VARIANTS)


def _in_shadow(rollout: Rollout) -> bool:
    return rollout.current_step.stage.value == "shadow"


def decades_needed(rollout: Rollout, sums: Sums) -> set[int]:
    """The latency decades whose fine buckets the percentiles of `sums` need."""
    cand, base, _ = _sides(rollout, sums)
    judged = (base,) if _in_shadow(rollout) else (cand, base)
    return set().union(
        *(latency_buckets.decades_holding(side.decade_counts(), PERCENTILES) for side in judged)
    )


def health_from_sums(
    rollout: Rollout, sums: Sums, start: datetime, end: datetime,
    fine_decades: Iterable[int] = range(latency_buckets.DECADES),
) -> HealthWindow:  # fmt: skip
    """The rollout's health from its metric sums over [start, end], with the fine latency
    buckets of `fine_decades` (the rest as decade counts); in shadow the candidate's numbers
    are its shadow decisions."""
    cand, base, everyone = _sides(rollout, sums)
    decades = tuple(fine_decades)
    if _in_shadow(rollout):
        shadow = everyone.count(SHADOW)
        candidate = VariantHealth(
            requests=shadow, shadow_decisions=shadow, shadow_errors=everyone.count(SHADOW_ERRORS)
        )
    else:
        excess = excess_violating(
            cand.count(VIOLATING), cand.count(REQUESTS), base.count(VIOLATING),
            base.count(REQUESTS),
        )  # fmt: skip
        candidate = cand.health(
            decades, excess, everyone.count(SHADOW), everyone.count(SHADOW_ERRORS)
        )
    return HealthWindow(
        window_start=start, window_end=end, baseline=base.health(decades), candidate=candidate
    )
