"""A/B experiments: start (admin), read live per-arm results, stop (admin, results frozen)."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from policyhub.domain.access import Principal
from policyhub.domain.audit import AuditAction, AuditEvent
from policyhub.domain.errors import PolicyHubError, invalid
from policyhub.domain.experiment import Experiment, ExperimentSpec, ExperimentState
from policyhub.domain.promotion_rules import require_no_traffic_change
from policyhub.domain.routing import ExperimentArm, ExperimentRoute, ServedPolicy
from policyhub.domain.transition import ExperimentWrite, Transition
from policyhub.domain.versions import PolicyStatus
from policyhub.ports import Clock, InteractionLog, PolicyStore
from policyhub.services.experiment_stats import summarise
from policyhub.services.registry import Registry

SERVABLE = {PolicyStatus.CANDIDATE, PolicyStatus.PRODUCTION, PolicyStatus.RETIRED}


def new_experiment_id(now: datetime) -> str:
    return f"ex_{int(now.timestamp() * 1000):013d}{secrets.token_hex(3)}"


class ExperimentService:
    def __init__(
        self, store: PolicyStore, registry: Registry, log: InteractionLog, clock: Clock
    ) -> None:
        self._store = store
        self._registry = registry
        self._log = log
        self._clock = clock

    def start(self, principal: Principal, agent_type: str, spec: ExperimentSpec) -> Experiment:
        tenant_id = principal.tenant_id
        current = self._registry.deployment(tenant_id, agent_type)
        require_no_traffic_change(current)
        if current.production is None:
            raise PolicyHubError(
                "not_promotable", "an experiment needs a production version to fall back on"
            )
        arms = []
        for i, arm in enumerate(spec.variants):
            v = self._registry.version(tenant_id, agent_type, arm.version)
            if v.status not in SERVABLE:
                raise PolicyHubError(
                    "not_promotable",
                    f"{v.version} is {v.status.value}; "
                    "arms must be candidate, production or retired",
                )
            if v.feature_schema != current.production.feature_schema:
                # A fact of the stored versions, not of the request's shape (issue 14).
                raise invalid(
                    f"body.variants[{i}].version",
                    f"{v.version} expects other features than production",
                    code="feature_dimension_mismatch",
                )
            arms.append(
                ExperimentArm(policy=ServedPolicy.of(v), traffic_percent=arm.traffic_percent)
            )
        now = self._clock.now()
        ends = now + timedelta(seconds=spec.duration_seconds) if spec.duration_seconds else None
        experiment = Experiment(
            experiment_id=new_experiment_id(now),
            agent_type=agent_type,
            name=spec.name,
            state=ExperimentState.RUNNING,
            variants=spec.variants,
            started_at=now,
            ends_at=ends,
        )
        deployment = current.model_copy(
            update={
                "active_experiment_id": experiment.experiment_id,
                "experiment_route": ExperimentRoute(
                    experiment_id=experiment.experiment_id, arms=arms, ends_at=ends
                ),
                "revision": current.revision + 1,
            }
        )
        audit = self._event(
            principal,
            AuditAction.EXPERIMENT_START,
            agent_type,
            spec.name,
            {
                "experiment_id": experiment.experiment_id,
                "variants": [a.model_dump() for a in spec.variants],
            },
        )
        self._store.commit(
            Transition(
                tenant_id,
                agent_type,
                current.revision,
                deployment,
                audit=(audit,),
                experiments=(ExperimentWrite(experiment, None),),
            )
        )
        return experiment

    def get(self, tenant_id: str, agent_type: str, experiment_id: str) -> dict[str, Any]:
        e = self._find(tenant_id, agent_type, experiment_id)
        if e.state is ExperimentState.STOPPED and e.result is not None:
            return {**e.model_dump(mode="json"), **e.result}
        return {**e.model_dump(mode="json"), **self._results(tenant_id, e)}

    def stop(
        self, principal: Principal, agent_type: str, experiment_id: str, reason: str | None
    ) -> dict[str, Any]:
        tenant_id = principal.tenant_id
        e = self._find(tenant_id, agent_type, experiment_id)
        if e.state is ExperimentState.STOPPED:
            raise PolicyHubError("conflict", f"experiment {experiment_id} is already stopped")
        current = self._registry.deployment(tenant_id, agent_type)
        result = self._results(tenant_id, e)
        stopped = e.model_copy(
            update={
                "state": ExperimentState.STOPPED,
                "stopped_at": self._clock.now(),
                "stop_reason": reason,
                "result": result,
                "revision": e.revision + 1,
            }
        )
        deployment = current.model_copy(
            update={
                "active_experiment_id": None,
                "experiment_route": None,
                "revision": current.revision + 1,
            }
        )
        audit = self._event(
            principal,
            AuditAction.EXPERIMENT_STOP,
            agent_type,
            reason,
            {
                "experiment_id": experiment_id,
                "winner": result["winner"],
                "p_value": result["p_value"],
                "srm_p_value": result["srm_p_value"],
            },
        )
        self._store.commit(
            Transition(
                tenant_id,
                agent_type,
                current.revision,
                deployment,
                audit=(audit,),
                experiments=(ExperimentWrite(stopped, e.revision),),
            )
        )
        return {**stopped.model_dump(mode="json"), **result}

    def _find(self, tenant_id: str, agent_type: str, experiment_id: str) -> Experiment:
        e = self._store.get_experiment(tenant_id, agent_type, experiment_id)
        if e is None:
            raise PolicyHubError(
                "experiment_not_found", f"no experiment {experiment_id} of agent {agent_type!r}"
            )
        return e

    def _results(self, tenant_id: str, e: Experiment) -> dict[str, Any]:
        end = e.stopped_at or self._clock.now()
        with self._log.table(tenant_id, e.agent_type, e.started_at, end) as table:
            return summarise(e.experiment_id, e.variants, table)

    def _event(
        self,
        principal: Principal,
        action: AuditAction,
        agent_type: str,
        reason: str | None,
        details: dict[str, Any],
    ) -> AuditEvent:
        return AuditEvent(
            event_id=uuid.uuid4().hex,
            at=self._clock.now(),
            actor=principal.key_id,
            action=action,
            agent_type=agent_type,
            reason=reason,
            details=details,
        )
