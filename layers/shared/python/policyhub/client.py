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


class PolicyHubClient:
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
    ) -> dict[str, Any]:
        body = {
            k: v
            for k, v in {
                "version": version,
                "agent_type": agent_type,
                "strategy": strategy,
                "reason": reason,
                "pipeline": pipeline,
            }.items()
            if v is not None
        }
        result: dict[str, Any] = self.request("POST", "/policies/promote", json=body)
        return result

    def rollback(self, version: str, agent_type: str, reason: str | None = None) -> dict[str, Any]:
        body = {"version": version, "agent_type": agent_type, "reason": reason}
        result: dict[str, Any] = self.request("POST", "/policies/rollback", json=body)
        return result

    def audit(self, agent_type: str | None = None) -> Iterator[Any]:
        return self.paginate("/policies/audit", {"agent_type": agent_type})
