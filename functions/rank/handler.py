"""POST /v1/rank — Rank candidates with the policy that serves this request."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("rank")
