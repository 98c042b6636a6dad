"""The interaction logs' two records, decision and feedback, and the one rule for an outcome.

Every writer builds its records here: the rank and feedback path, the simulator, the local
seeders, the benches and the tests. Every reader that turns feedback into a success or a reward
asks `outcome_of`: rollout health, the experiment statistics, the learning data set and the
serving metrics (docs/decisions/103-one-interaction-record-schema.md; the log layout is
decision 008).

A record is a JSON object on its own line. Writers write every key of its TypedDict; a value
typed `... | None` may be null. Readers read with `.get`: logs written before a key existed lack
it. The records are TypedDicts built by plain functions, not models, on purpose: rank logs one
per request with up to 1,000 candidates, and validating them would cost more than scoring them
(decision 095).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple, TypedDict

from policyhub.domain.routing import Variant
from policyhub.domain.timestamps import utc_iso


class LoggedCandidate(TypedDict):
    """A candidate as the policy saw it: what training and compare score again."""

    id: str
    retrieval_score: float
    features: list[float]
    """The item's features (the context is logged once per decision)."""


class Assigned(TypedDict):
    """What routing assigned, before any fallback."""

    variant: Variant
    """`canary` or `production` in a rollout: rollout health counts decisions by it."""
    policy_version: str | None
    """The assigned policy (null: none, retrieval order)."""


class ExplorationParams(TypedDict):
    """The exploration the propensity was computed with (ml/exploration.py)."""

    epsilon: float
    temperature: float


class ShadowRun(TypedDict):
    """What the shadow policy would have served; never served."""

    policy_version: str
    ranking: list[str]
    """Candidate ids by the shadow's scores, best first; empty when it failed."""
    error: str | None


class DecisionRecord(TypedDict):
    """One `POST /v1/rank`: what was asked, what served it and how, what was returned."""

    type: Literal["decision"]
    tenant_id: str
    agent_type: str
    decision_id: str
    """The id returned to the caller; feedback joins on it."""
    seed_key: str
    """What the exploration's top-item draw was seeded by (the id's uuid part on the rank
    path): `choose_top(probabilities, seed_key)` replays it."""
    at: str
    """When it was decided: `utc_iso` (`2026-11-01T12:00:00.000000Z`)."""
    policy_version: str | None
    """The version that actually served; null for retrieval order."""
    variant: Variant
    """Who actually served: a failed canary's fallback is `production`; `retrieval` when no
    policy served (none yet, every one failed, or `use_rl_ranking: false`)."""
    assigned: Assigned
    rollout_id: str | None
    experiment_id: str | None
    use_rl_ranking: bool
    """False: pure retrieval order with propensity 1; the learning loop leaves it out."""
    context: list[float]
    candidates: list[LoggedCandidate]
    """Every candidate of the request, in request order."""
    ranking: list[str]
    """Candidate ids as returned: after exploration, constraints and `top_k`."""
    proposed: list[str]
    """The explored order before constraints, cut to the length of `ranking`."""
    chosen_id: str
    """The explored top item, whose probability is `propensity` (before constraints, so it
    can differ from `ranking[0]`)."""
    propensity: float
    """Probability in (0, 1] that the logging policy put `chosen_id` on top."""
    exploration: ExplorationParams
    latency_ms: float
    """The service's time for this decision, request parsed to response built."""
    error: str | None
    """Why the assigned policy (and any fallback) failed; null when it served."""
    failed_version: str | None
    """The first version that failed (rollout health charges the error to it)."""
    violations: dict[str, int]
    """Times the policy's own order broke each constraint (kinds with zero absent)."""
    shadow: ShadowRun | None


class FeedbackRecord(TypedDict):
    """One accepted `POST /v1/feedback` (repeats for a decision are not logged again).

    `variant`, `policy_version`, `rollout_id` and `experiment_id` are the decision's, read from
    its signed id, so feedback is tallied without looking the decision up.
    """

    type: Literal["feedback"]
    tenant_id: str
    agent_type: str
    decision_id: str
    seed_key: str
    """The decision's `seed_key`."""
    at: str
    variant: Variant
    policy_version: str | None
    rollout_id: str | None
    experiment_id: str | None
    success: bool | None
    """The caller's word on whether the decision succeeded (see `outcome_of`)."""
    reward: float | None
    """The caller's graded reward in [0, 1] (see `outcome_of`)."""
    clicked_ids: list[str]


InteractionRecord = DecisionRecord | FeedbackRecord

DECISION_FIELDS: frozenset[str] = frozenset(DecisionRecord.__annotations__)
FEEDBACK_FIELDS: frozenset[str] = frozenset(FeedbackRecord.__annotations__)


def logged_candidates(candidates: Iterable[Mapping[str, Any]]) -> list[LoggedCandidate]:
    """The logged part of each candidate (`source`, `blocked`, `pinned` are not logged)."""
    return [
        {"id": c["id"], "retrieval_score": c["retrieval_score"], "features": c["features"]}
        for c in candidates
    ]


def decision_record(
    *,
    tenant_id: str,
    agent_type: str,
    decision_id: str,
    at: datetime,
    policy_version: str | None,
    variant: Variant,
    context: list[float],
    candidates: list[LoggedCandidate],
    ranking: list[str],
    chosen_id: str,
    propensity: float,
    epsilon: float,
    temperature: float,
    latency_ms: float,
    seed_key: str | None = None,
    assigned: Assigned | None = None,
    rollout_id: str | None = None,
    experiment_id: str | None = None,
    use_rl_ranking: bool = True,
    proposed: list[str] | None = None,
    error: str | None = None,
    failed_version: str | None = None,
    violations: dict[str, int] | None = None,
    shadow: ShadowRun | None = None,
) -> DecisionRecord:
    """A decision record. Defaults fit a writer without routing, constraints or failures:
    `seed_key` the decision id, `assigned` what served, `proposed` the ranking."""
    return {
        "type": "decision",
        "tenant_id": tenant_id,
        "agent_type": agent_type,
        "decision_id": decision_id,
        "seed_key": decision_id if seed_key is None else seed_key,
        "at": utc_iso(at),
        "policy_version": policy_version,
        "variant": variant,
        "assigned": (
            {"variant": variant, "policy_version": policy_version} if assigned is None else assigned
        ),
        "rollout_id": rollout_id,
        "experiment_id": experiment_id,
        "use_rl_ranking": use_rl_ranking,
        "context": context,
        "candidates": candidates,
        "ranking": ranking,
        "proposed": ranking if proposed is None else proposed,
        "chosen_id": chosen_id,
        "propensity": propensity,
        "exploration": {"epsilon": epsilon, "temperature": temperature},
        "latency_ms": latency_ms,
        "error": error,
        "failed_version": failed_version,
        "violations": {} if violations is None else violations,
        "shadow": shadow,
    }


def feedback_record(
    *,
    tenant_id: str,
    agent_type: str,
    decision_id: str,
    at: datetime,
    variant: Variant,
    policy_version: str | None,
    seed_key: str | None = None,
    rollout_id: str | None = None,
    experiment_id: str | None = None,
    success: bool | None = None,
    reward: float | None = None,
    clicked_ids: list[str] | None = None,
) -> FeedbackRecord:
    """A feedback record (`seed_key` defaults to the decision id, as `decision_record`'s)."""
    return {
        "type": "feedback",
        "tenant_id": tenant_id,
        "agent_type": agent_type,
        "decision_id": decision_id,
        "seed_key": decision_id if seed_key is None else seed_key,
        "at": utc_iso(at),
        "variant": variant,
        "policy_version": policy_version,
        "rollout_id": rollout_id,
        "experiment_id": experiment_id,
        "success": success,
        "reward": reward,
        "clicked_ids": [] if clicked_ids is None else clicked_ids,
    }


SUCCESS_REWARD = 0.5
"""A feedback that gives a reward and no `success` succeeded when the reward is at least this."""


class Outcome(NamedTuple):
    """What one feedback says: both readings, always together."""

    success: bool
    """Counts in success rates: rollout health, experiment arms, the serving metrics."""
    reward: float
    """In [0, 1]; what the learning data set and experiment mean rewards use."""


def outcome_of(feedback: Mapping[str, Any], chosen_id: str | None = None) -> Outcome | None:
    """The outcome of a feedback record: each field the caller gave answers its own question,
    and stands in for the other when that one is missing.

    - `success` is the success; without it, `reward >= SUCCESS_REWARD`.
    - `reward` is the reward; without it, 1.0 or 0.0 from `success`.
    - With neither, the clicks decide both (whether `chosen_id` was clicked), but only for a
      reader that knows the decision's chosen item; otherwise there is no outcome.

    So a feedback with `success: true, reward: 0.2` is a success with reward 0.2 for every
    reader. None when the feedback says nothing usable, or its reward is outside [0, 1].
    """
    success = feedback.get("success")
    raw_reward = feedback.get("reward")
    reward: float | None = None
    if raw_reward is not None:
        reward = float(raw_reward)
        if not 0.0 <= reward <= 1.0:  # NaN too
            return None
    if success is None and reward is None:
        clicked = feedback.get("clicked_ids")
        if chosen_id is None or not clicked:
            return None
        success = chosen_id in clicked
    if reward is None:
        return Outcome(bool(success), 1.0 if success else 0.0)
    if success is None:
        return Outcome(reward >= SUCCESS_REWARD, reward)
    return Outcome(bool(success), reward)


# `outcome_of` for readers that ask in SQL (columns success, reward, clicked_ids, chosen_id);
# tests hold both to the same answers.
OUTCOME_REWARD = """
    CASE
        WHEN reward IS NOT NULL THEN CASE WHEN reward >= 0 AND reward <= 1 THEN reward END
        WHEN success IS NOT NULL THEN success::DOUBLE
        WHEN chosen_id IS NOT NULL AND len(clicked_ids) > 0
            THEN list_contains(clicked_ids, chosen_id)::DOUBLE
    END"""
"""`outcome_of(feedback, chosen_id).reward` in SQL (NULL for no outcome)."""

OUTCOME_SUCCESS = f"""
    CASE
        WHEN reward IS NOT NULL AND NOT (reward >= 0 AND reward <= 1) THEN NULL
        WHEN success IS NOT NULL THEN success
        WHEN reward IS NOT NULL THEN reward >= {SUCCESS_REWARD}
        WHEN chosen_id IS NOT NULL AND len(clicked_ids) > 0
            THEN list_contains(clicked_ids, chosen_id)
    END"""
"""`outcome_of(feedback, chosen_id).success` in SQL (NULL for no outcome)."""
