"""GET /v1/policies/{version} — One policy version."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("get_policy")
