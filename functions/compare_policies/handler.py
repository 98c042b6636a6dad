"""POST /v1/policies/compare — Compare two versions by off-policy evaluation."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("compare_policies")
