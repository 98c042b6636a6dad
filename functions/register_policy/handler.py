"""POST /v1/policies — Register an externally trained ONNX policy as a candidate."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("register_policy")
