"""A synthetic contextual-bandit environment to test learning and off-policy evaluation.

Hidden truth: the probability that the top item succeeds is
    sigmoid(base + xᵀWa + uᵀa + g·tanh(vᵀa)·tanh(rᵀx))
for context x and item features a (a bilinear part, an item main effect and a nonlinear
interaction). Feedback is Bernoulli with that probability. The retrieval score knows the item
main effect and part of the interaction, blurred with noise: correlated with the truth, but a
policy that learns the context interaction can beat it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from policyhub.domain.interaction_records import (
    SUCCESS_REWARD,
    DecisionRecord,
    FeedbackRecord,
    InteractionRecord,
    LoggedCandidate,
    decision_record,
    feedback_record,
)
from policyhub.domain.routing import Variant
from policyhub.ml.dataset import LoggedDataset
from policyhub.ml.exploration import (
    DEFAULT_EPSILON,
    DEFAULT_TEMPERATURE,
    action_probabilities,
    action_probabilities_flat,
    choose_top,
    ranking_order,
)
from policyhub.ml.scorers import Scorer

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

_EPOCH = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SimulatorConfig:
    context_dim: int = 6
    item_dim: int = 6
    n_candidates: int = 10
    seed: int = 0
    base_logit: float = -1.0
    interaction_strength: float = 1.5
    item_strength: float = 0.8
    nonlinear_strength: float = 1.0
    retrieval_interaction_share: float = 0.3
    retrieval_noise: float = 0.8

    def __post_init__(self) -> None:
        if self.context_dim < 1 or self.item_dim < 1 or self.n_candidates < 1:
            raise ValueError("dimensions and candidates per request must be >= 1")

    @property
    def feature_dim(self) -> int:
        return self.context_dim + self.item_dim + 1


@dataclass(frozen=True)
class Requests:
    """n requests with the same number N of candidates each."""

    contexts: FloatArray  # [n, context_dim]
    items: FloatArray  # [n, N, item_dim]
    retrieval: FloatArray  # [n, N]
    expected: FloatArray  # [n, N] true success probability of each candidate

    @property
    def n(self) -> int:
        return int(self.contexts.shape[0])

    @property
    def n_candidates(self) -> int:
        return int(self.items.shape[1])

    @property
    def offsets(self) -> IntArray:
        return np.arange(self.n + 1, dtype=np.int64) * self.n_candidates

    def features(self) -> Float32Array:
        """Feature rows [n·N, D]: context ⊕ item features ⊕ [retrieval_score]."""
        n, k = self.n, self.n_candidates
        ctx = np.broadcast_to(self.contexts[:, None, :], (n, k, self.contexts.shape[1]))
        rows = np.concatenate([ctx, self.items, self.retrieval[:, :, None]], axis=2)
        return rows.reshape(n * k, -1).astype(np.float32)


class BanditSimulator:
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = cfg = config or SimulatorConfig()
        rng = np.random.default_rng([cfg.seed, 0])
        dc, di = cfg.context_dim, cfg.item_dim
        self._w = rng.normal(size=(dc, di)) * cfg.interaction_strength / np.sqrt(dc * di) * 2
        self._u = rng.normal(size=di) * cfg.item_strength / np.sqrt(di)
        self._v = rng.normal(size=di) * 2 / np.sqrt(di)
        self._r = rng.normal(size=dc) * 2 / np.sqrt(dc)

    def _rng(self, seed: int, purpose: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, seed, purpose])

    def _logits(self, contexts: FloatArray, items: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(true logit, the part retrieval can see) of every candidate, shape [n, N]."""
        cfg = self.config
        interaction = np.einsum("nc,cd,nkd->nk", contexts, self._w, items)
        main = items @ self._u
        nonlinear = (
            cfg.nonlinear_strength * np.tanh(items @ self._v) * np.tanh(contexts @ self._r)[:, None]
        )
        logit = cfg.base_logit + interaction + main + nonlinear
        visible = main + cfg.retrieval_interaction_share * interaction
        return logit, visible

    def expected_reward(self, contexts: FloatArray, items: FloatArray) -> FloatArray:
        logit, _ = self._logits(contexts, items)
        p: FloatArray = 1.0 / (1.0 + np.exp(-logit))
        return p

    def sample_requests(self, n: int, seed: int) -> Requests:
        cfg = self.config
        rng = self._rng(seed, 1)
        contexts = rng.normal(size=(n, cfg.context_dim))
        items = rng.normal(size=(n, cfg.n_candidates, cfg.item_dim))
        logit, visible = self._logits(contexts, items)
        noise = rng.normal(scale=cfg.retrieval_noise, size=visible.shape)
        retrieval = 1.0 / (1.0 + np.exp(-(visible + noise)))
        expected = 1.0 / (1.0 + np.exp(-logit))
        return Requests(contexts, items, retrieval, expected)

    @staticmethod
    def sample_rewards(expected: npt.ArrayLike, seed: int) -> FloatArray:
        p = np.asarray(expected, dtype=np.float64)
        draws: FloatArray = (np.random.default_rng(seed).random(p.shape) < p).astype(np.float64)
        return draws

    def policy_probabilities(
        self,
        requests: Requests,
        scorer: Scorer,
        epsilon: float = DEFAULT_EPSILON,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> FloatArray:
        """Top-item probabilities [n, N] of scorer + exploration."""
        scores = scorer(requests.features())
        probs = action_probabilities_flat(scores, requests.offsets, epsilon, temperature)
        return probs.reshape(requests.n, requests.n_candidates)

    def policy_value(
        self,
        scorer: Scorer,
        *,
        n: int = 20_000,
        seed: int = 10_000,
        epsilon: float = DEFAULT_EPSILON,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> float:
        """TRUE expected reward of scorer + exploration on n fresh requests.

        Exact over the top-item draw (Σ probs·expected); Monte Carlo only over contexts.
        """
        requests = self.sample_requests(n, seed)
        probs = self.policy_probabilities(requests, scorer, epsilon, temperature)
        return float((probs * requests.expected).sum(axis=1).mean())

    def log_dataset(
        self,
        n: int,
        scorer: Scorer,
        *,
        seed: int,
        epsilon: float = DEFAULT_EPSILON,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> LoggedDataset:
        """Logs of n decisions made by scorer + exploration, straight into arrays.

        Same distribution as `log_records`, but the top items are drawn from one generator for
        the whole batch instead of one seeded generator per decision_id, so millions of
        decisions take seconds. Use `log_records` when the exact serving draw matters.
        """
        requests = self.sample_requests(n, seed)
        probs = self.policy_probabilities(requests, scorer, epsilon, temperature)
        rng = self._rng(seed, 2)
        cdf = np.cumsum(probs, axis=1)
        u = rng.random(n)[:, None] * cdf[:, -1:]
        chosen = np.minimum((cdf <= u).sum(axis=1), requests.n_candidates - 1).astype(np.int64)
        rows = np.arange(n)
        reward = self.sample_rewards(requests.expected[rows, chosen], seed=int(rng.integers(2**62)))
        return LoggedDataset(
            decision_ids=tuple(f"sim-{seed}-{i}" for i in range(n)),
            features=requests.features(),
            offsets=requests.offsets,
            chosen=chosen,
            propensity=probs[rows, chosen],
            reward=reward,
            context_dim=self.config.context_dim,
            item_dim=self.config.item_dim,
        )

    def log_records(
        self,
        n: int,
        scorer: Scorer,
        *,
        seed: int,
        epsilon: float = DEFAULT_EPSILON,
        temperature: float = DEFAULT_TEMPERATURE,
        tenant_id: str = "tenant-sim",
        agent_type: str = "memory_manager",
        policy_version: str | None = None,
        variant: Variant = "retrieval",
    ) -> tuple[list[DecisionRecord], list[FeedbackRecord]]:
        """Decision and feedback log records, exactly as serving writes them.

        The top item is drawn with `choose_top` (seeded by decision_id) like the rank service.
        """
        requests = self.sample_requests(n, seed)
        started = time.perf_counter()
        features = requests.features()
        scores = scorer(features).reshape(n, requests.n_candidates)
        latency_ms = (time.perf_counter() - started) * 1000.0 / max(n, 1)
        rewards_rng = self._rng(seed, 3)
        decisions: list[DecisionRecord] = []
        feedback: list[FeedbackRecord] = []
        for i in range(n):
            decision_id = f"sim-{self.config.seed}-{seed}-{i:08d}"
            probs = action_probabilities(scores[i], epsilon, temperature)
            top = choose_top(probs, decision_id)
            order = ranking_order(scores[i], top)
            ids = [f"item-{j}" for j in range(requests.n_candidates)]
            at = _EPOCH + timedelta(seconds=seed * 1_000_000 + i)
            ranking = [ids[j] for j in order]
            decisions.append(
                decision_record(
                    tenant_id=tenant_id, agent_type=agent_type, decision_id=decision_id,
                    at=at, policy_version=policy_version, variant=variant,
                    context=requests.contexts[i].astype(np.float32).tolist(),
                    candidates=_candidates(requests, i, ids), ranking=ranking,
                    chosen_id=ranking[0], propensity=float(probs[top]),
                    epsilon=epsilon, temperature=temperature, latency_ms=latency_ms,
                )
            )  # fmt: skip
            success = bool(rewards_rng.random() < requests.expected[i, top])
            feedback.append(
                feedback_record(
                    tenant_id=tenant_id, agent_type=agent_type, decision_id=decision_id,
                    at=at + timedelta(milliseconds=500), variant=variant,
                    policy_version=policy_version, success=success,
                    clicked_ids=[ids[top]] if success else [],
                )
            )  # fmt: skip
        return decisions, feedback


def dataset_records(
    data: LoggedDataset,
    scores: FloatArray,
    *,
    tenant_id: str,
    agent_type: str,
    policy_version: str | None,
    after: datetime,
    end: datetime,
) -> list[InteractionRecord]:
    """Decision and feedback records, as the rank path logs them, for `log_dataset`'s arrays
    (scored by the logging policy): millions of decisions where `log_records` would take long.

    The served order is the drawn top item, then the rest by descending score (exploration.py);
    the propensity is the drawn item's; feedback gives `success`. Times are spread evenly in
    (after, end).
    """
    dc = data.context_dim
    rows = data.features.tolist()
    score_list = scores.tolist()
    step = (end - after) / (data.n_decisions + 1)
    variant: Variant = "production" if policy_version else "retrieval"
    out: list[InteractionRecord] = []
    for i, did in enumerate(data.decision_ids):
        start, stop = int(data.offsets[i]), int(data.offsets[i + 1])
        block, block_scores = rows[start:stop], score_list[start:stop]
        ids = [f"item-{j}" for j in range(stop - start)]
        top = int(data.chosen[i])
        rest = sorted((j for j in range(len(ids)) if j != top), key=lambda j: -block_scores[j])
        at = after + step * (i + 1)
        success = float(data.reward[i]) >= SUCCESS_REWARD
        ranking = [ids[top], *(ids[j] for j in rest)]
        out.append(decision_record(
            tenant_id=tenant_id, agent_type=agent_type, decision_id=did, at=at,
            policy_version=policy_version, variant=variant, context=block[0][:dc],
            candidates=[
                {"id": ids[j], "retrieval_score": r[-1], "features": r[dc:-1]}
                for j, r in enumerate(block)
            ],
            ranking=ranking, chosen_id=ids[top], propensity=float(data.propensity[i]),
            epsilon=DEFAULT_EPSILON, temperature=DEFAULT_TEMPERATURE, latency_ms=1.0,
        ))
        out.append(feedback_record(
            tenant_id=tenant_id, agent_type=agent_type, decision_id=did, at=at + step / 2,
            variant=variant, policy_version=policy_version, success=success,
            clicked_ids=[ids[top]] if success else [],
        ))  # fmt: skip
    return out


def _candidates(requests: Requests, i: int, ids: Sequence[str]) -> list[LoggedCandidate]:
    return [
        {
            "id": ids[j],
            "retrieval_score": float(np.float32(requests.retrieval[i, j])),
            "features": requests.items[i, j].astype(np.float32).tolist(),
        }
        for j in range(len(ids))
    ]
