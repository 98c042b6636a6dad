"""PUT /v1/policies/constraints — Replace the constitutional constraints of an agent."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("put_constraints")
