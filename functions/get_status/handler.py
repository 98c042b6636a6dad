"""GET /v1/policies/status — Current production policy, rollout and experiment of an agent."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("get_status")
