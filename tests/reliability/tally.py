"""The figures `make reliability` prints, counted by the tests as they run.

Each count is appended as one JSON line to the file named by POLICYHUB_RELIABILITY_TALLY (set by
bench/reliability.py), so counts from several processes add up; without it counting is a no-op.
POLICYHUB_RELIABILITY_SOAK=1 makes every sized scenario larger (the soak run).
"""

from __future__ import annotations

import json
import os
import threading
from typing import Literal

TALLY_ENV = "POLICYHUB_RELIABILITY_TALLY"
SOAK_ENV = "POLICYHUB_RELIABILITY_SOAK"

Figure = Literal[
    "scenarios", "fuzz_cases", "faults", "races", "server_errors", "unavailable", "data_lost"
]
FIGURES: tuple[Figure, ...] = (
    "scenarios",
    "fuzz_cases",
    "faults",
    "races",
    "server_errors",
    "unavailable",
    "data_lost",
)
_lock = threading.Lock()


def count(figure: Figure, n: int = 1) -> None:
    path = os.environ.get(TALLY_ENV)
    if not path or n == 0:
        return
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({figure: n}) + "\n")


def observe(status: int, *, fault_injected: bool = False) -> None:
    """Count a response: a 503 under an injected fault is expected, any other 5xx is a bug."""
    if status >= 500:
        count("unavailable" if fault_injected and status == 503 else "server_errors")


def soak() -> bool:
    return os.environ.get(SOAK_ENV) == "1"


def sized(ci: int, soak_size: int) -> int:
    return soak_size if soak() else ci


def read(path: str) -> dict[str, int]:
    totals: dict[str, int] = dict.fromkeys(FIGURES, 0)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                for k, v in json.loads(line).items():
                    totals[k] = totals.get(k, 0) + int(v)
    return totals
