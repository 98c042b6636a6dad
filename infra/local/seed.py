"""The `demo` tenant a new user finds on the local stack: an admin key and a policy history."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from infra.local.seed_learning import SEEDED_SCHEMA, seed_trained_line
from policyhub.api import container
from policyhub.domain.access import Principal, Role, Tier
from policyhub.domain.versions import DEFAULT_AGENT_TYPE, FeatureSchema
from policyhub.ml.onnx_models import random_mlp_policy

DEMO_TENANT = "demo"

# Two feature-schema changes (MINOR bumps) then PATCH releases, so that the product page's
# examples (v1.2.4 in production, v1.2.5 the candidate) run unchanged against the local stack.
HISTORY: tuple[tuple[FeatureSchema, int], ...] = (
    (FeatureSchema(context_dim=4, item_dim=4), 2),  # v1.0.0, v1.0.1
    (FeatureSchema(context_dim=8, item_dim=4), 2),  # v1.1.0, v1.1.1
    (SEEDED_SCHEMA, 7),  # v1.2.0 … v1.2.6, 8 context and 8 item features
)
PROMOTED = ("v1.0.1", "v1.1.1", "v1.2.2", "v1.2.4")
CURRENT_SCHEMA = HISTORY[-1][0]


@dataclass(frozen=True)
class SeededTenant:
    tenant_id: str
    admin_key: str
    principal: Principal


def write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


def seed_demo(
    local_dir: Path | None, agent_type: str = DEFAULT_AGENT_TYPE, trained: bool = False
) -> SeededTenant:
    """The demo tenant, its admin key and the policy history above.

    With `trained` (what `make up` does) the v1.2.x line comes from real training jobs on
    simulated logs (infra/local/seed_learning.py); without it every version is a random
    network, which is all the serving tests need and takes a fraction of the time.
    """
    key, plaintext = container.keys().create(DEMO_TENANT, Tier.PRO, Role.ADMIN)
    admin = Principal(DEMO_TENANT, key.key_id, key.tier, key.role)
    if local_dir is not None:
        write_secret(local_dir / "admin-key", plaintext)
    if trained:
        _seed_with_training(admin, agent_type)
        return SeededTenant(DEMO_TENANT, plaintext, admin)
    registry = container.registry()
    seed = 0
    for schema, count in HISTORY:
        for _ in range(count):
            seed += 1
            registry.register(
                admin,
                DEMO_TENANT,
                agent_type,
                random_mlp_policy(schema.input_dim, 16, seed=seed),
                schema,
                notes="seed policy of the local stack",
            )
    for version in PROMOTED:
        registry.promote_immediate(admin, agent_type, version, reason="history of the demo")
    return SeededTenant(DEMO_TENANT, plaintext, admin)


def _seed_with_training(admin: Principal, agent_type: str) -> None:
    registry = container.registry()
    seed = 0
    for schema, count in HISTORY[:-1]:
        for _ in range(count):
            seed += 1
            registry.register(
                admin,
                DEMO_TENANT,
                agent_type,
                random_mlp_policy(schema.input_dim, 16, seed=seed),
                schema,
                notes="seed policy of the local stack",
            )
        promoted = registry.deployment(DEMO_TENANT, agent_type).latest_version
        assert promoted in PROMOTED
        registry.promote_immediate(admin, agent_type, promoted, reason="history of the demo")
    jobs = seed_trained_line(admin, DEMO_TENANT, agent_type)
    trained = [job.candidate_version for job in jobs]
    expected = [f"v1.2.{i}" for i in range(HISTORY[-1][1])]
    if trained != expected:
        raise RuntimeError(f"the demo's trained line is {trained}, expected {expected}")
