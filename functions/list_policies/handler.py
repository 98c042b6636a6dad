"""GET /v1/policies — Policy versions of an agent, newest first."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("list_policies")
