"""Fakes and simulated logs for the learning loop's tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from policyhub.adapters.log_table import LogTable
from policyhub.domain.holdout import BOTH_SPLITS, Split
from policyhub.domain.interaction_records import InteractionRecord
from policyhub.ml.scorers import Scorer, retrieval_scorer
from policyhub.ml.simulator import BanditSimulator, SimulatorConfig

Record = dict[str, Any]


class MemoryInteractionLog:
    def __init__(self) -> None:
        self.records: list[InteractionRecord] = []

    def read(
        self,
        tenant_id: str,
        agent_type: str,
        since: datetime,
        until: datetime,
        fields: frozenset[str] | None = None,
    ) -> Iterator[Record]:
        for record in self.records:
            r = cast(Record, record)
            at = datetime.fromisoformat(str(r["at"]).replace("Z", "+00:00"))
            mine = r["tenant_id"] == tenant_id and r["agent_type"] == agent_type
            if mine and since <= at <= until:
                yield r if fields is None else {k: r[k] for k in fields if k in r}

    def table(
        self,
        tenant_id: str,
        agent_type: str,
        since: datetime,
        until: datetime,
        splits: frozenset[Split] = BOTH_SPLITS,
    ) -> LogTable:
        """Every record of the window, whatever `splits` (as many as an unsplit log holds)."""
        return LogTable.of(self.read(tenant_id, agent_type, since, until))


class RecordingRunner:
    def __init__(self, fail: bool = False) -> None:
        self.started: list[tuple[str, str, str]] = []
        self.fail = fail

    def start(self, tenant_id: str, agent_type: str, job_id: str) -> None:
        if self.fail:
            raise RuntimeError("no capacity")
        self.started.append((tenant_id, agent_type, job_id))


class FixedAgents:
    def __init__(self, *agents: tuple[str, str]) -> None:
        self.pairs = list(agents)

    def agents(self) -> Iterator[tuple[str, str]]:
        return iter(self.pairs)


def simulated_records(
    n: int,
    *,
    tenant_id: str,
    agent_type: str = "memory_manager",
    end: datetime,
    seed: int = 1,
    config: SimulatorConfig | None = None,
    scorer: Scorer = retrieval_scorer,
    policy_version: str | None = None,
) -> list[InteractionRecord]:
    """n decisions (with feedback) logged by `scorer`, spread over the 10 minutes before `end`."""
    sim = BanditSimulator(config or SimulatorConfig(context_dim=3, item_dim=3, n_candidates=5))
    decisions, feedback = sim.log_records(
        n, scorer, seed=seed, tenant_id=tenant_id, agent_type=agent_type,
        policy_version=policy_version,
        variant="production" if policy_version else "retrieval",
    )  # fmt: skip
    step = timedelta(minutes=10) / max(n, 1)
    for i, (d, f) in enumerate(zip(decisions, feedback, strict=True)):
        at = end - timedelta(minutes=10) + step * i
        d["at"] = _iso(at)
        f["at"] = _iso(at + step / 2)
    return [*decisions, *feedback]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
