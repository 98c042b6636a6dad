"""Rollout health as metric sums: what each decision and feedback of a rollout counts
(decision 119; `health_sums` makes a `Health` of the sums over a window).

The metrics are per `[rollout_id, variant]`: a decision counts under the variant it was
*assigned* (canary or production; a canary that failed and fell back is still the canary's
request and error), a feedback under the variant that *served* it (a fallback's outcome is
production's), exactly as `services.health_reader.LogHealthReader` tallies the logs. Every
count is a sum of 1s, and latency is counted per bucket (`latency_buckets`), so CloudWatch's
`Sum` over a window is all a reader needs, in AWS and on moto alike.
"""

from __future__ import annotations

from policyhub.domain import latency_buckets

DIMENSIONS = ("rollout_id", "variant")
REQUESTS = "Requests"
ERRORS = "Errors"
"""The assigned policy failed (the request fell back): charged to the assigned variant."""
SUCCESSES = "Successes"
FAILURES = "Failures"
VIOLATING = "ViolatingDecisions"
"""Decisions whose ranking broke at least one constraint (`excess_violating`)."""
SHADOW = "ShadowDecisions"
SHADOW_ERRORS = "ShadowErrors"
COUNTS = (REQUESTS, ERRORS, SUCCESSES, FAILURES, VIOLATING, SHADOW, SHADOW_ERRORS)
SUMMARY: tuple[str, ...] = (*COUNTS, *latency_buckets.DECADE_NAMES)
"""What a reader sums first, per variant; then the fine latency buckets of the decades where
the percentiles lie (`decades_needed`)."""
PERCENTILES = (50, 93, 95, 97)
VARIANTS = ("canary", "production")
"""The variants a rollout's metrics carry (decisions outside a rollout carry no rollout_id)."""


def decision_counts(
    latency_ms: float, error: bool, violations: int, shadow: bool, shadow_error: bool
) -> list[str]:
    """The metrics one decision of a rollout adds 1 to (under its assigned variant)."""
    names = [REQUESTS, latency_buckets.metric_name(latency_ms),
             latency_buckets.decade_name(latency_ms)]  # fmt: skip
    if error:
        names.append(ERRORS)
    if violations:
        names.append(VIOLATING)
    if shadow:
        names.append(SHADOW)
        if shadow_error:
            names.append(SHADOW_ERRORS)
    return names


def feedback_count(success: bool) -> str:
    """The metric one feedback with an outcome adds 1 to (under the variant that served)."""
    return SUCCESSES if success else FAILURES
