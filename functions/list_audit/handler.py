"""GET /v1/policies/audit — Audit events of an agent, newest first."""

from policyhub.api.app import lambda_handler

handler = lambda_handler("list_audit")
