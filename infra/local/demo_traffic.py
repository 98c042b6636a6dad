"""Simulated users of the demo: they rank through the HTTP API and report what happened.

Each visit asks `POST /v1/rank` with a context and candidates drawn from `BanditSimulator`,
then reports `POST /v1/feedback` with a success drawn from the simulator's TRUE success
probability of the item the API put on top. Nothing else is known to the users: whatever
policy served them, the outcome is the hidden truth of what they were shown.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from policyhub.client import PolicyHubClient
from policyhub.domain.routing import BUCKETS, bucket
from policyhub.ml.simulator import BanditSimulator, Requests, SimulatorConfig

# Users whose best items depend strongly on their context (so a learned policy can beat the
# retrieval order by far), and a retrieval score that only sees each item's main effect.
DEMO_SIMULATOR = SimulatorConfig(
    context_dim=6,
    item_dim=6,
    n_candidates=10,
    seed=7,
    base_logit=1.0,
    interaction_strength=3.5,
    retrieval_interaction_share=0.0,
)


@dataclass(frozen=True)
class Served:
    """One visit: what the API answered and what the user then reported."""

    user: str
    decision_id: str
    variant: str
    policy_version: str | None
    success: bool
    true_probability: float


class SimulatedUsers:
    """Visits run on a small thread pool; each thread has its own HTTP session."""

    def __init__(
        self,
        client_factory: Callable[[], PolicyHubClient],
        agent_type: str,
        config: SimulatorConfig = DEMO_SIMULATOR,
        seed: int = 0,
        workers: int = 4,
    ) -> None:
        self.simulator = BanditSimulator(config)
        self.agent_type = agent_type
        self._factory = client_factory
        self._local = threading.local()
        # One feedback call at a time: the local gateway runs every request of a function on
        # the same Powertools resolver, which is not thread-safe (concurrent calls can lose
        # their body and answer 500). In AWS one Lambda environment serves one event at a
        # time; until the local gateway does the same, the demo does not race it.
        self._feedback_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="demo-user")
        self._batches = itertools.count(seed * 1_000_000)
        self.visits = 0

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _client(self) -> PolicyHubClient:
        client: PolicyHubClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._factory()
        return client

    def visit(self, users: Iterable[str]) -> list[Served]:
        """One rank + feedback per user, in parallel; returns the visits in user order."""
        names = list(users)
        if not names:
            return []
        batch = next(self._batches)
        requests = self.simulator.sample_requests(len(names), seed=batch)
        draws = np.random.default_rng([batch, 1]).random(len(names))
        jobs = [(name, requests, i, float(draws[i])) for i, name in enumerate(names)]
        served = list(self._pool.map(lambda job: self._one(*job), jobs))
        self.visits += len(served)
        return served

    def _one(self, user: str, requests: Requests, i: int, draw: float) -> Served:
        ids = [f"doc-{j}" for j in range(requests.n_candidates)]
        candidates = [
            {
                "id": ids[j],
                "retrieval_score": float(requests.retrieval[i, j]),
                "features": requests.items[i, j].tolist(),
            }
            for j in range(requests.n_candidates)
        ]
        client = self._client()
        decision = client.rank(
            requests.contexts[i].tolist(), candidates, self.agent_type, routing_key=user
        )
        top = ids.index(decision["ranking"][0]["id"])
        probability = float(requests.expected[i, top])
        success = draw < probability
        with self._feedback_lock:
            client.feedback(decision["decision_id"], success=success)
        return Served(
            user=user,
            decision_id=decision["decision_id"],
            variant=decision["variant"],
            policy_version=decision["policy_version"],
            success=success,
            true_probability=probability,
        )


def plain_users(prefix: str) -> Iterator[str]:
    """Users as they come: routing spreads them by hash."""
    return (f"{prefix}-{i}" for i in itertools.count())


def rollout_users(rollout_id: str, candidate_share: int = 1) -> Iterator[str]:
    """Users drawn so that every rollout step sees both variants (compressed time).

    A canary at 5 % of real users needs 20 requests for each one it serves. These users are
    picked by their routing bucket instead: `candidate_share` from the first 5 % of buckets
    (served by the candidate at every canary step, since buckets below p·100 are the canary)
    for each one from the upper half (served by the baseline until 100 %). Outcomes stay the
    simulator's truth; only the mix of who arrives is chosen.
    """
    first_step = BUCKETS * 5 // 100
    canary = (u for u in plain_users(rollout_id) if bucket(u, rollout_id) < first_step)
    baseline = (u for u in plain_users(f"{rollout_id}-b") if bucket(u, rollout_id) >= BUCKETS // 2)
    while True:
        for _ in range(candidate_share):
            yield next(canary)
        yield next(baseline)


def success_rate(visits: Iterable[Served]) -> float | None:
    outcomes = [v.success for v in visits]
    return sum(outcomes) / len(outcomes) if outcomes else None
