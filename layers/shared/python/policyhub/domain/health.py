"""What a health reader reports about a rollout for one window of time.

The window is the current step's: from the step's start (rounded up, never down, to the
reader's resolution, so no traffic of the previous step leaks in) to now. `candidate` is the
traffic served or shadow-scored by the rollout's candidate version whatever variant label it
was logged under (during the post-promotion watch that is all production traffic);
`baseline` is the traffic the baseline version served in the same window (None when there is
none: at 100 % and during the watch).

A reader that cannot answer returns `HealthReadFailed`; it never makes numbers up. Numbers
that are missing (None), NaN, infinite, negative or contradictory are never taken as healthy:
the controller treats them as inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from numbers import Integral


@dataclass(frozen=True)
class VariantHealth:
    requests: int
    """Decisions served (or, in shadow, scored by production) in the window."""
    errors: int = 0
    """Decisions where this variant failed and the request fell back (invariant 4). Feedback
    on those decisions belongs to the fallback, so readers leave it out of the two counts
    below; each error counts as a failed outcome of this variant."""
    feedback_successes: int = 0
    feedback_failures: int = 0
    latency_p95_ms: float | None = None
    latency_p50_ms: float | None = None
    """Optional; sharpens the noise estimate of the p95 (see decision 032)."""
    latency_p93_ms: float | None = None
    latency_p97_ms: float | None = None
    """Optional; with both, the p95's noise is also measured from the data (decision 098)."""
    constraint_violations: int = 0
    shadow_decisions: int = 0
    """Shadow stage only (candidate): decisions the candidate scored without serving."""
    shadow_errors: int = 0

    @property
    def outcomes(self) -> int:
        """Decisions whose success is known: feedback either way, or a serving error."""
        return self.feedback_successes + self.feedback_failures + self.errors

    @property
    def success_rate(self) -> float | None:
        return self.feedback_successes / self.outcomes if self.outcomes > 0 else None

    def problems(self) -> list[str]:
        """Why these numbers cannot be trusted; empty when they are usable."""
        counts: tuple[tuple[str, object], ...] = (
            ("requests", self.requests), ("errors", self.errors),
            ("feedback_successes", self.feedback_successes),
            ("feedback_failures", self.feedback_failures),
            ("constraint_violations", self.constraint_violations),
            ("shadow_decisions", self.shadow_decisions), ("shadow_errors", self.shadow_errors))
        found = [f"{name} is {value!r}, not a count" for name, value in counts
                 if isinstance(value, bool) or not isinstance(value, Integral) or value < 0]
        if found:
            return found
        if self.errors > self.requests:
            found.append(f"errors ({self.errors}) exceed requests ({self.requests})")
        if self.shadow_errors > self.shadow_decisions:
            found.append(f"shadow_errors ({self.shadow_errors}) exceed shadow_decisions "
                         f"({self.shadow_decisions})")
        return found

    def usable_p95(self) -> float | None:
        return _positive_finite(self.latency_p95_ms)

    def usable_p50(self) -> float | None:
        return _positive_finite(self.latency_p50_ms)

    def usable_p93(self) -> float | None:
        return _positive_finite(self.latency_p93_ms)

    def usable_p97(self) -> float | None:
        return _positive_finite(self.latency_p97_ms)


def _positive_finite(value: float | None) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


@dataclass(frozen=True)
class HealthWindow:
    window_start: datetime
    window_end: datetime
    baseline: VariantHealth | None
    candidate: VariantHealth | None


@dataclass(frozen=True)
class HealthReadFailed:
    window_start: datetime
    window_end: datetime
    error: str
    """What went wrong, for the step's reasons and the audit trail."""


Health = HealthWindow | HealthReadFailed
