"""The hot path: assign, score, explore, constrain, log — and feedback on what was served."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt

from policyhub.domain.constraints import EnforcedRanking, enforce, retrieval_order
from policyhub.domain.interaction_records import (
    LoggedCandidate,
    ShadowRun,
    decision_record,
    feedback_record,
    logged_candidates,
    outcome_of,
)
from policyhub.domain.routing import Assignment, ServedPolicy, Variant, assign
from policyhub.domain.serving import (
    Candidate,
    FeedbackAccepted,
    FeedbackRequest,
    RankedItem,
    RankRequest,
    RankResponse,
)
from policyhub.ml.exploration import DEFAULT_EPSILON, DEFAULT_TEMPERATURE, explore
from policyhub.ml.features import FeatureValidationError, assemble_features
from policyhub.ml.scoring import SessionCache
from policyhub.ports import ArtifactStore, Clock, LogSink, Once, ServingMetrics
from policyhub.services.decision_ids import DecisionRef, issue, resolve
from policyhub.services.serving_view_cache import ServingViewCache

Scores = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Exploration:
    epsilon: float = DEFAULT_EPSILON
    temperature: float = DEFAULT_TEMPERATURE


@dataclass
class _Scored:
    policy: ServedPolicy | None
    scores: Scores
    variant: Variant
    error: str | None = None
    failed_version: str | None = None


class RankService:
    def __init__(
        self,
        views: ServingViewCache,
        sessions: SessionCache,
        artifacts: ArtifactStore,
        sink: LogSink,
        metrics: ServingMetrics,
        clock: Clock,
        once: Once,
        exploration: Exploration = Exploration(),
        max_artifact_bytes: int = 5 << 20,
    ) -> None:
        self._views = views
        self._sessions = sessions
        self._artifacts = artifacts
        self._sink = sink
        self._metrics = metrics
        self._clock = clock
        self._once = once
        self._exploration = exploration
        self._max_artifact_bytes = max_artifact_bytes
        self.timings: dict[str, float] = {}
        """Seconds spent in each phase of the last call (read by the benchmark)."""

    # ---- rank ------------------------------------------------------------------------------
    def rank(self, tenant_id: str, req: RankRequest) -> RankResponse:
        t0 = time.perf_counter()
        view = self._views.get(tenant_id, req.agent_type)
        decision_uuid = uuid.uuid4().hex
        candidates = req.candidates
        retrieval = np.array([c["retrieval_score"] for c in candidates], np.float32)
        assignment = (
            assign(view, req.routing_key or decision_uuid, self._clock.now())
            if req.use_rl_ranking
            else Assignment("retrieval", None)
        )
        t1 = time.perf_counter()
        scored = self._score(tenant_id, req, assignment, retrieval)
        shadow = self._shadow(tenant_id, req, assignment, retrieval)
        t2 = time.perf_counter()
        if req.use_rl_ranking:
            proposal, propensity = explore(
                scored.scores,
                decision_uuid,
                self._exploration.epsilon,
                self._exploration.temperature,
            )
        else:
            proposal, propensity = retrieval_order(candidates), 1.0
        plain = _plain(candidates)
        enforced = enforce(
            proposal, candidates, view.constraints, req.top_k, flagged=False if plain else None
        )
        t3 = time.perf_counter()
        served = scored.policy
        variant = scored.variant if req.use_rl_ranking else "retrieval"
        ref = DecisionRef(
            decision_uuid,
            req.agent_type,
            variant,
            served.version if served else None,
            assignment.rollout_id,
            assignment.experiment_id,
        )
        decision_id = issue(tenant_id, ref)
        ids = [c["id"] for c in candidates]
        scores = scored.scores.tolist()
        ranking: list[RankedItem] = [
            {"id": ids[i], "score": scores[i], "rank": r} for r, i in enumerate(enforced.order, 1)
        ]
        latency_ms = (time.perf_counter() - t0) * 1000
        self._log_decision(
            tenant_id,
            req,
            ids,
            ref,
            decision_id,
            assignment,
            scored,
            shadow,
            proposal,
            enforced,
            propensity,
            latency_ms,
            plain,
        )
        self._metrics.decision(
            req.agent_type,
            assignment.variant if req.use_rl_ranking else "retrieval",
            assignment.rollout_id,
            assignment.experiment_id,
            latency_ms,
            scored.error is not None,
            enforced.total_violations,
            shadow is not None,
            shadow is not None and bool(shadow["error"]),
        )
        t4 = time.perf_counter()
        self.timings = {"route": t1 - t0, "score": t2 - t1, "constraints": t3 - t2, "log": t4 - t3}
        return RankResponse.served(
            decision_id, req.agent_type, ref.policy_version, variant, req.use_rl_ranking, ranking
        )

    def _run(
        self,
        tenant_id: str,
        agent_type: str,
        policy: ServedPolicy,
        req: RankRequest,
        retrieval: Scores,
    ) -> Scores:
        matrix = assemble_features(
            req.context.features,
            [c["features"] for c in req.candidates],
            retrieval,
            policy.feature_schema,
        )
        session = self._sessions.get_or_load(
            policy.sha256,
            lambda: self._artifacts.get(
                tenant_id, agent_type, policy.sha256, self._max_artifact_bytes
            ),
        )
        return session.score(matrix)

    def _score(self, tenant_id: str, req: RankRequest, a: Assignment, retrieval: Scores) -> _Scored:
        """Serve the assigned policy; on failure production, then retrieval order."""
        if a.policy is None:
            return _Scored(None, retrieval, "retrieval")
        chain = [(a.policy, a.variant)]
        if a.fallback is not None and a.fallback.version != a.policy.version:
            chain.append((a.fallback, "production"))
        error: str | None = None
        failed: str | None = None
        for policy, variant in chain:
            try:
                scores = self._run(tenant_id, req.agent_type, policy, req, retrieval)
                return _Scored(policy, scores, variant, error, failed)
            except FeatureValidationError:
                if variant == "production":
                    raise  # the request does not fit the production policy: a 422
                problem = "feature schema mismatch"
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"[:300]
            if failed is None:
                error, failed = problem, policy.version
            else:
                error = f"{error}; then {policy.version}: {problem}"[:600]
        return _Scored(None, retrieval, "retrieval", error, failed)

    def _shadow(
        self, tenant_id: str, req: RankRequest, a: Assignment, retrieval: Scores
    ) -> ShadowRun | None:
        if a.shadow is None:
            return None
        try:
            scores = self._run(tenant_id, req.agent_type, a.shadow, req, retrieval)
        except Exception as exc:
            return {
                "policy_version": a.shadow.version,
                "ranking": [],
                "error": f"{type(exc).__name__}: {exc}"[:300],
            }
        order = np.argsort(-scores, kind="stable")
        return {
            "policy_version": a.shadow.version,
            "ranking": [req.candidates[int(i)]["id"] for i in order],
            "error": None,
        }

    def _log_decision(
        self,
        tenant_id: str,
        req: RankRequest,
        ids: list[str],
        ref: DecisionRef,
        decision_id: str,
        a: Assignment,
        scored: _Scored,
        shadow: ShadowRun | None,
        proposal: list[int],
        enforced: EnforcedRanking,
        propensity: float,
        latency_ms: float,
        plain: bool,
    ) -> None:
        cands = req.candidates
        order = enforced.order
        self._sink.put(
            decision_record(
                tenant_id=tenant_id,
                agent_type=req.agent_type,
                decision_id=decision_id,
                seed_key=ref.uuid,
                at=self._clock.now(),
                policy_version=ref.policy_version,
                variant=ref.variant,
                assigned={
                    "variant": a.variant,
                    "policy_version": a.policy.version if a.policy else None,
                },
                rollout_id=a.rollout_id,
                experiment_id=a.experiment_id,
                use_rl_ranking=req.use_rl_ranking,
                context=req.context.features,
                candidates=(
                    cast(list[LoggedCandidate], cands) if plain else logged_candidates(cands)
                ),
                ranking=[ids[i] for i in order],
                proposed=[ids[i] for i in proposal[: len(order)]],
                chosen_id=ids[proposal[0]],
                propensity=propensity,
                epsilon=self._exploration.epsilon,
                temperature=self._exploration.temperature,
                latency_ms=round(latency_ms, 3),
                error=scored.error,
                failed_version=scored.failed_version,
                violations={str(k): v for k, v in enforced.violations.items()},
                shadow=shadow,
            )
        )

    # ---- feedback --------------------------------------------------------------------------
    def feedback(self, tenant_id: str, req: FeedbackRequest) -> FeedbackAccepted:
        """Record feedback once per decision (repeats are accepted and ignored)."""
        ref = resolve(tenant_id, req.decision_id)
        record = feedback_record(
            tenant_id=tenant_id,
            agent_type=ref.agent_type,
            decision_id=req.decision_id,
            seed_key=ref.uuid,
            at=self._clock.now(),
            variant=ref.variant,
            policy_version=ref.policy_version,
            rollout_id=ref.rollout_id,
            experiment_id=ref.experiment_id,
            success=req.success,
            reward=req.reward,
            clicked_ids=req.clicked_ids,
        )
        outcome = outcome_of(record)

        def deliver() -> None:
            self._sink.put(record)
            self._metrics.feedback(
                ref.agent_type,
                ref.variant,
                ref.rollout_id or ref.experiment_id,
                outcome.success if outcome else None,
            )

        self._once.run_once(f"{tenant_id}:{ref.uuid}", deliver)
        return FeedbackAccepted(decision_id=req.decision_id, accepted=True)


def _plain(candidates: list[Candidate]) -> bool:
    """Every candidate carries only id, retrieval_score and features (a validated candidate
    with three keys has exactly those): no flags to enforce, and the record can share the
    request's own candidates (copying 100 dicts cost ~15 us a call)."""
    return set(map(len, candidates)) == {3}
