"""GET /v1/health — Liveness of the API."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("health")
