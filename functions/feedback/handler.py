"""POST /v1/feedback — Report how a ranking decision went."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("feedback")
