"""GET /v1/policies/training-jobs — Training jobs of an agent, newest first."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("list_training_jobs")
