"""POST /v1/policies/train — Start a training job for an agent."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("train_policy")
