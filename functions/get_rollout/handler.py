"""GET /v1/policies/rollouts/{rollout_id} — One rollout with every step, its numbers and verdict."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("get_rollout")
