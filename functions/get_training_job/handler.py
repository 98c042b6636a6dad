"""GET /v1/policies/training-jobs/{job_id} — One training job."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("get_training_job")
