"""POST /v1/policies/rollback — Restore a previous production version at once."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("rollback_policy")
