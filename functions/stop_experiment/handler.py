"""POST /v1/policies/experiments/{experiment_id}/stop — Stop an experiment; its results are frozen and production serves again."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("stop_experiment")
