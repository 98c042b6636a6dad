"""The one error table: every error the API can answer with, its HTTP status and code.

Domain and service code raise `PolicyHubError(code, message)`; one exception handler in the
API layer turns it into API.md's envelope. A code missing from the table is a bug, caught at
construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ERROR_TABLE: dict[str, int] = {
    "malformed_json": 400,
    "bad_request": 400,
    "invalid_cursor": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "version_not_found": 404,
    "rollout_not_found": 404,
    "job_not_found": 404,
    "experiment_not_found": 404,
    "decision_not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "concurrent_change": 409,
    "rollout_active": 409,
    "experiment_active": 409,
    "not_promotable": 409,
    "already_production": 409,
    "not_rollbackable": 409,
    "feature_schema_mismatch": 409,
    "insufficient_data": 409,
    "job_active": 409,
    "payload_too_large": 413,
    "validation_error": 422,
    "invalid_artifact": 422,
    "feature_dimension_mismatch": 422,
    "throttled": 429,
    "internal_error": 500,
    "service_unavailable": 503,
}


@dataclass(frozen=True)
class ErrorDetail:
    field: str
    issue: str


@dataclass
class PolicyHubError(Exception):
    code: str
    message: str
    details: list[ErrorDetail] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.code not in ERROR_TABLE:
            raise ValueError(f"error code {self.code!r} is not in the error table")
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return ERROR_TABLE[self.code]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class LogWindowTooLargeError(PolicyHubError):
    """A window's interaction logs need more local disk than the reader has free (in AWS, the
    analysis function's ephemeral storage): a shorter window fits."""

    def __init__(self, needed_bytes: int, free_bytes: int) -> None:
        issue = (
            f"its logs need {needed_bytes / 1e9:.1f} GB of local disk to read and "
            f"{free_bytes / 1e9:.1f} GB is free; choose a shorter window"
        )
        super().__init__("validation_error", f"the window is too large: {issue}",
                         [ErrorDetail("window", issue)])  # fmt: skip
        self.needed_bytes = needed_bytes
        self.free_bytes = free_bytes


def not_found(code: str, message: str) -> PolicyHubError:
    return PolicyHubError(code, message)


def conflict(code: str, message: str, **details: str) -> PolicyHubError:
    return PolicyHubError(code, message, [ErrorDetail(k, v) for k, v in details.items()])


def invalid(field_path: str, issue: str, code: str = "validation_error") -> PolicyHubError:
    return PolicyHubError(code, f"{field_path}: {issue}", [ErrorDetail(field_path, issue)])
