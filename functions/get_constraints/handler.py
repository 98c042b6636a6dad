"""GET /v1/policies/constraints — Constitutional constraints of an agent."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("get_constraints")
