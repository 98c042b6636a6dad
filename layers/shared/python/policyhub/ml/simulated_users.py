"""Simulated users: they rank through the HTTP API and report what happened.

Each visit asks `POST /v1/rank` with a context and candidates drawn from `BanditSimulator`
(with a routing key per user, so sticky assignment applies), then reports `POST /v1/feedback`
with a success drawn from the simulator's TRUE success probability of the item the API put on
top. Nothing else is known to the users: whatever policy served them, the outcome is the hidden
truth of what they were shown.

Used by `policyhub traffic` (cli/traffic.py) and the demo (infra/local/demo_traffic.py).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from policyhub.client import PolicyHubClient
from policyhub.domain.versions import DEFAULT_AGENT_TYPE
from policyhub.ml.simulator import BanditSimulator, Requests, SimulatorConfig

SEEDED_USERS = SimulatorConfig(context_dim=8, item_dim=8, n_candidates=6, seed=7)
"""The users of the local stack's `memory_manager`: its v1.2.x line was trained on their logs
(infra/local/seed_learning.py) and `policyhub --local traffic` plays them. Few candidates per
request keep the seed's logs, and so `make up`, small and quick."""


def users_for(agent_type: str, context_dim: int, item_dim: int) -> SimulatorConfig:
    """The simulated users of an agent whose production policy has this feature schema.

    `memory_manager` with the seed's schema gets the users its policies were trained on; any
    other agent (or schema) a simulator of the default shape, sized to the schema.
    """
    seeded = (SEEDED_USERS.context_dim, SEEDED_USERS.item_dim)
    if agent_type == DEFAULT_AGENT_TYPE and (context_dim, item_dim) == seeded:
        return SEEDED_USERS
    return SimulatorConfig(context_dim=context_dim, item_dim=item_dim)


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
    """Visits run on a small thread pool; each thread has its own HTTP session.

    Requests and outcomes are drawn from `seed`: the same seed, users and answers of the API
    give the same visits.
    """

    def __init__(
        self,
        client_factory: Callable[[], PolicyHubClient],
        agent_type: str,
        config: SimulatorConfig,
        seed: int = 0,
        workers: int = 4,
    ) -> None:
        self.simulator = BanditSimulator(config)
        self.agent_type = agent_type
        self._factory = client_factory
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="simulated-user")
        self._batches = itertools.count(seed * 1_000_000)
        self._count_lock = threading.Lock()
        self.visits = 0

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _client(self) -> PolicyHubClient:
        client: PolicyHubClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._factory()
        return client

    def _draw(self, n: int) -> tuple[Requests, list[float]]:
        batch = next(self._batches)
        requests = self.simulator.sample_requests(n, seed=batch)
        draws = np.random.default_rng([batch, 1]).random(n)
        return requests, draws.tolist()

    def visit(self, users: Iterable[str]) -> list[Served]:
        """One rank + feedback per user, in parallel; returns the visits in user order."""
        names = list(users)
        if not names:
            return []
        requests, draws = self._draw(len(names))
        jobs = [(name, requests, i, draws[i]) for i, name in enumerate(names)]
        return list(self._pool.map(lambda job: self._one(*job), jobs))

    def submit(self, user: str) -> Future[Served]:
        """One visit of `user`, started on the pool; the future raises what the API raised."""
        requests, draws = self._draw(1)
        return self._pool.submit(self._one, user, requests, 0, draws[0])

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
        # No lock around feedback: the local gateway runs concurrent calls of a function in
        # separate handler instances, as Lambda does (infra/local/functions.py, decision 097).
        client.feedback(decision["decision_id"], success=success)
        with self._count_lock:
            self.visits += 1
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


def success_rate(visits: Iterable[Served]) -> float | None:
    outcomes = [v.success for v in visits]
    return sum(outcomes) / len(outcomes) if outcomes else None
