"""The demo's simulated users: `policyhub.ml.simulated_users` with the demo's simulator, and the
users it picks so that every rollout step of compressed time sees both variants."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from policyhub.client import PolicyHubClient
from policyhub.domain.routing import BUCKETS, bucket
from policyhub.ml import simulated_users
from policyhub.ml.simulated_users import Served, plain_users, success_rate
from policyhub.ml.simulator import SimulatorConfig

__all__ = [
    "DEMO_SIMULATOR",
    "Served",
    "SimulatedUsers",
    "plain_users",
    "rollout_users",
    "success_rate",
]

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


class SimulatedUsers(simulated_users.SimulatedUsers):
    """The package's simulated users, playing the demo's simulator unless told otherwise."""

    def __init__(
        self,
        client_factory: Callable[[], PolicyHubClient],
        agent_type: str,
        config: SimulatorConfig = DEMO_SIMULATOR,
        seed: int = 0,
        workers: int = 4,
    ) -> None:
        super().__init__(client_factory, agent_type, config, seed=seed, workers=workers)


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
