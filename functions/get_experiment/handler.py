"""GET /v1/policies/experiments/{experiment_id} — An experiment with per-arm results, winner and sample-ratio check."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("get_experiment")
