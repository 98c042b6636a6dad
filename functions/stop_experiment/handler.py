"""POST /v1/policies/experiments/{experiment_id}/stop"""

from policyhub.api.app import lambda_handler

handler = lambda_handler("stop_experiment")
