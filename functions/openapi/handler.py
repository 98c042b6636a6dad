"""GET /v1/openapi.json — This API's OpenAPI document."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("openapi")
