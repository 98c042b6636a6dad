"""`make reliability`: run tests/reliability and print its figures.

    python -m bench.reliability [--soak]

Prints scenarios run, fuzz cases, faults injected, races, 5xx seen (split into unexpected
5xx and 503s under injected faults) and data lost. Exits non-zero when a test failed, or when
an unexpected 5xx or a lost record was seen. CI size by default; `--soak` scales every sized
scenario up (POLICYHUB_RELIABILITY_SOAK=1).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.reliability.tally import SOAK_ENV, TALLY_ENV, read

ROOT = Path(__file__).resolve().parents[1]
LABELS = {
    "scenarios": "scenarios run",
    "fuzz_cases": "fuzz cases",
    "faults": "faults injected",
    "races": "races",
    "server_errors": "5xx seen (unexpected)",
    "unavailable": "503 under injected faults",
    "data_lost": "data lost",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--soak", action="store_true", help="larger fuzz, race and fault sizes")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tally_file = str(Path(tmp) / "tally.jsonl")
        env = {
            **os.environ,
            TALLY_ENV: tally_file,
            SOAK_ENV: "1" if args.soak else "0",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "CRITICAL"),
        }
        started = time.monotonic()
        tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/reliability"],
            cwd=ROOT,
            env=env,
            check=False,
        )
        figures = read(tally_file)
    print(f"\nreliability ({'soak' if args.soak else 'CI'}), {time.monotonic() - started:.0f} s")
    for key, label in LABELS.items():
        print(f"  {label:<28} {figures.get(key, 0)}")
    bad = figures["server_errors"] + figures["data_lost"]
    if tests.returncode != 0:
        print("  tests FAILED")
    return 1 if tests.returncode != 0 or bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
