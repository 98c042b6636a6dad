"""POST /v1/policies/promote — Promote a candidate (safe, canary or immediate)."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("promote_policy")
