"""POST /v1/policies/experiments — Start an A/B experiment between policy versions."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("start_experiment")
