"""Calling the API in-process through the same gateway emulation the local stack serves."""

from __future__ import annotations

import json
from typing import Any

from infra.local.gateway import GatewayResponse, invoke
from policyhub.api import container
from policyhub.domain.access import Role, Tier


class Api:
    def __init__(self, key: str | None) -> None:
        self.key = key

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.key:
            h["Authorization"] = f"Bearer {self.key}"
        return h

    def get(self, path: str, **query: Any) -> GatewayResponse:
        q = {k: [str(v)] for k, v in query.items() if v is not None}
        return invoke("GET", f"/v1{path}", headers=self._headers(), query=q or None)

    def post_json(self, method: str, path: str, body: Any) -> GatewayResponse:
        return invoke(method, f"/v1{path}", headers=self._headers(), body=json.dumps(body).encode())

    def post(self, path: str, body: Any = None, raw: bytes | None = None) -> GatewayResponse:
        data = raw if raw is not None else json.dumps(body).encode()
        return invoke("POST", f"/v1{path}", headers=self._headers(), body=data)


def new_key(tenant: str, tier: Tier = Tier.PRO, role: Role = Role.ADMIN) -> str:
    return container.keys().create(tenant, tier, role)[1]


def error_code(response: GatewayResponse) -> str:
    code: str = response.json()["error"]["code"]
    return code
