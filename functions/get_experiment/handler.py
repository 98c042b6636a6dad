"""GET /v1/policies/experiments/{experiment_id}"""

from policyhub.api.app import lambda_handler

handler = lambda_handler("get_experiment")
