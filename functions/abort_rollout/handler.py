"""POST /v1/policies/rollouts/{rollout_id}/abort — Stop a rollout; traffic returns to production."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("abort_rollout")
