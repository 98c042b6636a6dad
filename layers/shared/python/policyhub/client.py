"""A typed Python client of the policyhub HTTP API (used by the CLI and the demo)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

DEFAULT_TIMEOUT = 30.0


class ApiError(Exception):
    """An error answer of the API, with API.md's envelope unpacked."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None,
        details: list[dict[str, str]],
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.request_id, self.details = request_id, details


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


class PolicyHubClient:
    """One method per API operation; list operations return lazy iterators over every page.

    Every error answer raises `ApiError` with the envelope's code, message and request id.
    """

    def __init__(
        self, base_url: str, api_key: str | None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = timeout

    def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        r = self._session.request(
            method, f"{self.base_url}{path}", params=clean, json=json, timeout=self._timeout
        )
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
            except (ValueError, KeyError, TypeError):
                err = {"code": "http_error", "message": r.text[:200]}
            raise ApiError(
                r.status_code,
                err.get("code", "error"),
                err.get("message", ""),
                r.headers.get("x-request-id"),
                err.get("details", []),
            )
        return r.json() if r.content else None

    def paginate(self, path: str, params: dict[str, Any] | None = None) -> Iterator[Any]:
        cursor: str | None = None
        while True:
            page = self.request("GET", path, params={**(params or {}), "cursor": cursor})
            yield from page["items"]
            if not page["has_more"]:
                return
            cursor = page["next_cursor"]

    # ---- the API, one method per operation ----------------------------------------------
    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/health")
        return result

    def status(self, agent_type: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", "/policies/status", params={"agent_type": agent_type}
        )
        return result

    def policies(self, agent_type: str | None = None, status: str | None = None) -> Iterator[Any]:
        return self.paginate("/policies", {"agent_type": agent_type, "status": status})

    def policy(self, version: str, agent_type: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", f"/policies/{version}", params={"agent_type": agent_type}
        )
        return result

    def register(
        self,
        artifact_base64: str,
        context_dim: int,
        item_dim: int,
        agent_type: str | None = None,
        notes: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "artifact_base64": artifact_base64,
            "notes": notes,
            "feature_schema": {"context_dim": context_dim, "item_dim": item_dim},
        }
        if agent_type:
            body["agent_type"] = agent_type
        result: dict[str, Any] = self.request("POST", "/policies", json=body)
        return result

    def promote(
        self,
        version: str,
        agent_type: str | None = None,
        strategy: str | None = None,
        reason: str | None = None,
        pipeline: dict[str, Any] | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """`force=True` promotes a version an earlier rollout rolled back as unhealthy."""
        body = {
            k: v
            for k, v in {
                "version": version,
                "agent_type": agent_type,
                "strategy": strategy,
                "reason": reason,
                "pipeline": pipeline,
                "force": force or None,
            }.items()
            if v is not None
        }
        result: dict[str, Any] = self.request("POST", "/policies/promote", json=body)
        return result

    def rollback(
        self, version: str, agent_type: str, reason: str | None = None, force: bool = False
    ) -> dict[str, Any]:
        """`force=True` restores a version whose feature schema differs from production's."""
        body: dict[str, Any] = {"version": version, "agent_type": agent_type, "reason": reason}
        if force:
            body["force"] = True
        result: dict[str, Any] = self.request("POST", "/policies/rollback", json=body)
        return result

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            method, path, params=params, json=None if json is None else _without_none(json)
        )
        return result

    # ---- compare, rollouts, training, experiments, constraints --------------------------------
    def compare(
        self,
        baseline_version: str,
        candidate_version: str,
        agent_type: str | None = None,
        window_hours: int | None = None,
        min_samples: int | None = None,
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            "/policies/compare",
            json={
                "baseline_version": baseline_version,
                "candidate_version": candidate_version,
                "agent_type": agent_type,
                "window_hours": window_hours,
                "min_samples": min_samples,
            },
        )

    def rollouts(self, agent_type: str | None = None) -> Iterator[Any]:
        """Rollouts of an agent, newest first, every page."""
        return self.paginate("/policies/rollouts", {"agent_type": agent_type})

    def rollout(self, rollout_id: str, agent_type: str | None = None) -> dict[str, Any]:
        return self._call(
            "GET", f"/policies/rollouts/{rollout_id}", params={"agent_type": agent_type}
        )

    def abort_rollout(
        self, rollout_id: str, agent_type: str | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            f"/policies/rollouts/{rollout_id}/abort",
            params={"agent_type": agent_type},
            json={"reason": reason},
        )

    def train(self, agent_type: str | None = None, force: bool = False) -> dict[str, Any]:
        return self._call(
            "POST", "/policies/train", json={"agent_type": agent_type, "force": force or None}
        )

    def training_job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/policies/training-jobs/{job_id}")

    def training_jobs(self, agent_type: str | None = None) -> Iterator[Any]:
        """Training jobs of an agent, newest first, every page."""
        return self.paginate("/policies/training-jobs", {"agent_type": agent_type})

    def start_experiment(
        self,
        name: str,
        variants: list[tuple[str, float]],
        agent_type: str | None = None,
        duration_seconds: int | None = None,
    ) -> dict[str, Any]:
        """`variants` are (version, traffic_percent) pairs summing to 100."""
        return self._call(
            "POST",
            "/policies/experiments",
            json={
                "agent_type": agent_type,
                "name": name,
                "variants": [{"version": v, "traffic_percent": p} for v, p in variants],
                "duration_seconds": duration_seconds,
            },
        )

    def experiment(self, experiment_id: str, agent_type: str | None = None) -> dict[str, Any]:
        return self._call(
            "GET", f"/policies/experiments/{experiment_id}", params={"agent_type": agent_type}
        )

    def stop_experiment(
        self, experiment_id: str, agent_type: str | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            f"/policies/experiments/{experiment_id}/stop",
            params={"agent_type": agent_type},
            json={"reason": reason},
        )

    def constraints(self, agent_type: str | None = None) -> dict[str, Any]:
        return self._call("GET", "/policies/constraints", params={"agent_type": agent_type})

    # ---- serving --------------------------------------------------------------------------
    def rank(
        self,
        context: list[float],
        candidates: list[dict[str, Any]],
        agent_type: str | None = None,
        routing_key: str | None = None,
        use_rl_ranking: bool | None = None,
        top_k: int | None = None,
    ) -> dict[str, Any]:
        """`candidates` as API.md's `{id, retrieval_score, features, ...}` objects."""
        return self._call(
            "POST",
            "/rank",
            json={
                "agent_type": agent_type,
                "context": {"features": context},
                "candidates": candidates,
                "routing_key": routing_key,
                "use_rl_ranking": use_rl_ranking,
                "top_k": top_k,
            },
        )

    def feedback(
        self,
        decision_id: str,
        success: bool | None = None,
        reward: float | None = None,
        clicked_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            "/feedback",
            json={
                "decision_id": decision_id,
                "success": success,
                "reward": reward,
                "clicked_ids": clicked_ids,
            },
        )

    def audit(self, agent_type: str | None = None) -> Iterator[Any]:
        return self.paginate("/policies/audit", {"agent_type": agent_type})
