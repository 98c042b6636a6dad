"""GET /v1/policies/rollouts — Rollouts of an agent, newest first."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("list_rollouts")
