"""Constitutional constraints: rules every served ranking obeys, whichever policy produced it.

Per agent (PUT /v1/policies/constraints): `max_rank_lift`, `min_retrieval_score`,
`max_items_per_source`. Per request, a candidate may be `blocked` (never returned) or `pinned`
(keeps its retrieval position). `enforce` turns the policy's proposed order into one that obeys
all of them and counts what the proposal would have broken.

Definitions (decision record 044):
- Retrieval order: descending `retrieval_score`, ties by input order.
- The *allowed* candidates are decided without looking at the policy, in this precedence:
  1. `blocked` removes a candidate, pinned or not;
  2. `min_retrieval_score` removes candidates scoring below it, pinned or not;
  3. `max_items_per_source` keeps, per source, pinned candidates first and then the best by
     retrieval order, up to the cap (a pinned candidate beyond the cap is removed too).
     Candidates without a source are not capped.
- A candidate's *retrieval position* is its 0-based index among the allowed candidates in
  retrieval order. The policy only reorders the allowed set; it never chooses its members.
- The output is the first `top_k` slots of a permutation of the allowed candidates where every
  pinned candidate sits at its retrieval position and no other candidate sits more than
  `max_rank_lift` positions above its retrieval position. Slot by slot, a pinned candidate takes
  its slot; any other slot gets the policy's most preferred remaining candidate that may go
  there. Retrieval order itself satisfies every rule, so such a candidate always exists and
  `enforce` never fails on conflicting constraints.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict, Field


class Constraints(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_rank_lift: int | None = Field(
        default=None,
        ge=0,
        strict=True,
        description="An item may not move up more than this many positions versus its "
        "retrieval rank.",
    )
    min_retrieval_score: float | None = Field(
        default=None,
        allow_inf_nan=False,
        strict=True,
        description="Items with a lower retrieval score are never returned.",
    )
    max_items_per_source: int | None = Field(
        default=None,
        ge=1,
        strict=True,
        description="At most this many items from one `source` in the returned ranking.",
    )

    @property
    def is_empty(self) -> bool:
        return (
            self.max_rank_lift is None
            and self.min_retrieval_score is None
            and self.max_items_per_source is None
        )


NO_CONSTRAINTS = Constraints()


class ConstrainedCandidate(TypedDict):
    """What enforcement reads of a request's candidate (serving.Candidate has these keys)."""

    retrieval_score: float
    source: NotRequired[str | None]
    blocked: NotRequired[bool]
    pinned: NotRequired[bool]


class Violation(StrEnum):
    BLOCKED = "blocked"
    MIN_RETRIEVAL_SCORE = "min_retrieval_score"
    MAX_ITEMS_PER_SOURCE = "max_items_per_source"
    PINNED = "pinned"
    MAX_RANK_LIFT = "max_rank_lift"


@dataclass(frozen=True, slots=True)
class EnforcedRanking:
    order: tuple[int, ...]
    """Indices into the candidates, best first, at most `top_k` of them."""
    violations: Mapping[Violation, int] = field(default_factory=dict)
    """How many times the policy's own top-k broke each rule (kinds with zero are absent).

    Filter rules count the proposed items they removed (each item under the first rule that
    removed it). Position rules look at the policy's order of the allowed items: `pinned` counts
    pinned items it moved into, out of, or within the result away from their retrieval position;
    `max_rank_lift` counts items it lifted too far.
    """

    @property
    def total_violations(self) -> int:
        return sum(self.violations.values())


def retrieval_order(candidates: Sequence[ConstrainedCandidate]) -> list[int]:
    """Candidate indices by descending retrieval score; ties keep input order."""
    return _descending([c["retrieval_score"] for c in candidates])


def _descending(scores: list[float]) -> list[int]:
    # A reversed sort is still stable, so equal scores stay in input order.
    return sorted(range(len(scores)), key=scores.__getitem__, reverse=True)


def enforce(
    ranking_from_policy: Sequence[int],
    candidates: Sequence[ConstrainedCandidate],
    constraints: Constraints | None = None,
    top_k: int | None = None,
    *,
    flagged: bool | None = None,
) -> EnforcedRanking:
    """Apply the constraints and flags to the policy's order of all candidates.

    `ranking_from_policy` is a permutation of `range(len(candidates))`, best first (pass
    `retrieval_order(candidates)` when no policy ranks). `top_k=None` keeps every allowed item.
    `flagged=False` says no candidate carries `blocked` or `pinned` (the caller knows it from
    how the request was read), so they are not looked for; None looks.
    """
    n = len(candidates)
    _check_permutation(ranking_from_policy, n)
    if top_k is not None and top_k < 0:
        raise ValueError("top_k must be >= 0")
    requested = n if top_k is None else min(top_k, n)
    rules = constraints or NO_CONSTRAINTS
    if flagged is None:
        flagged = any(c.get("blocked") or c.get("pinned") for c in candidates)
    if rules.is_empty and not flagged:
        return EnforcedRanking(tuple(ranking_from_policy[:requested]))  # the common case
    blocked = [c.get("blocked", False) for c in candidates]
    pinned = [c.get("pinned", False) for c in candidates]
    allowed, removed_by = _allowed(candidates, rules, blocked, pinned)
    position = {i: p for p, i in enumerate(allowed)}
    k = min(requested, len(allowed))
    violations: dict[Violation, int] = {}
    for i in ranking_from_policy[:requested]:
        rule = removed_by.get(i)
        if rule is not None:
            violations[rule] = violations.get(rule, 0) + 1

    # What the policy would have served had only the filters applied.
    proposal = list(islice((i for i in ranking_from_policy if i in position), k))
    pinned_at = {p: i for p, i in enumerate(allowed) if pinned[i]}
    if pinned_at:
        proposed_at = {i: p for p, i in enumerate(proposal)}
        misplaced = sum(
            1 for p, i in pinned_at.items()
            if (p < k or i in proposed_at) and proposed_at.get(i) != p
        )
        if misplaced:
            violations[Violation.PINNED] = misplaced
    lift = rules.max_rank_lift
    if lift is not None:
        lifted = sum(1 for p, i in enumerate(proposal) if position[i] - p > lift)
        if lifted:
            violations[Violation.MAX_RANK_LIFT] = lifted

    if not pinned_at and lift is None:
        return EnforcedRanking(tuple(proposal), violations)
    order = _place(ranking_from_policy, allowed, pinned_at, lift, k)
    return EnforcedRanking(order, violations)


def _check_permutation(ranking: Sequence[int], n: int) -> None:
    if len(ranking) != n or set(ranking) != set(range(n)):
        raise ValueError(f"ranking_from_policy must be a permutation of range({n})")


def _allowed(
    candidates: Sequence[ConstrainedCandidate],
    rules: Constraints,
    blocked: list[bool],
    pinned: list[bool],
) -> tuple[list[int], dict[int, Violation]]:
    """Allowed indices in retrieval order, and the rule that removed each other index."""
    removed_by: dict[int, Violation] = {}
    scores = [c["retrieval_score"] for c in candidates]
    order = _descending(scores)
    floor = rules.min_retrieval_score
    if floor is None and not any(blocked):
        passed = order
    else:
        passed = []
        for i in order:
            if blocked[i]:
                removed_by[i] = Violation.BLOCKED
            elif floor is not None and scores[i] < floor:
                removed_by[i] = Violation.MIN_RETRIEVAL_SCORE
            else:
                passed.append(i)
    cap = rules.max_items_per_source
    if cap is None:
        return passed, removed_by
    sources = [c.get("source") for c in candidates]
    used: dict[str, int] = {}
    # Pinned candidates claim their source's slots first, in retrieval order.
    for i in [i for i in passed if pinned[i]] + [i for i in passed if not pinned[i]]:
        source = sources[i]
        if source is None:
            continue
        count = used.get(source, 0)
        if count < cap:
            used[source] = count + 1
        else:
            removed_by[i] = Violation.MAX_ITEMS_PER_SOURCE
    return [i for i in passed if i not in removed_by], removed_by


def _place(
    ranking_from_policy: Sequence[int],
    allowed: list[int],
    pinned_at: dict[int, int],
    lift: int | None,
    k: int,
) -> tuple[int, ...]:
    """Fill slots 0..k-1: pinned items at their slot, else the policy's best eligible item.

    A non-pinned item at retrieval position r may take slot p once p >= r - lift. Items become
    eligible in retrieval order; a heap keyed by the policy's rank picks among them.
    """
    policy_rank = [0] * len(ranking_from_policy)
    for rank, i in enumerate(ranking_from_policy):
        policy_rank[i] = rank
    reach = len(allowed) if lift is None else lift
    pinned = set(pinned_at.values())
    eligible: list[tuple[int, int]] = []
    released = 0
    out: list[int] = []
    for slot in range(k):
        fixed = pinned_at.get(slot)
        if fixed is not None:
            out.append(fixed)
            continue
        while released < len(allowed) and released <= slot + reach:
            i = allowed[released]
            if i not in pinned:
                heapq.heappush(eligible, (policy_rank[i], i))
            released += 1
        out.append(heapq.heappop(eligible)[1])
    return tuple(out)
