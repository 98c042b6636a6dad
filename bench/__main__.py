"""`make bench`: every benchmark, in one run, each printing medians and ratios.

    python -m bench            # rank handler vs raw onnxruntime, canary judgement, a health
                               # look on CloudWatch metrics, compare/train, compare on 10M
                               # decisions (writes ~18 GB to the temp folder for a while)
    python -m bench --quick    # smaller runs of the same (a smoke test of the harness)
"""

from __future__ import annotations

import subprocess
import sys


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    runs = [
        ["bench.rank", *(["--iterations", "300"] if quick else [])],
        ["bench.canary_sim", *(["--rollouts", "100"] if quick else ["--rollouts", "1000"])],
        ["bench.health_look", *(["--minutes", "10", "--looks", "3"] if quick else [])],
        ["bench.compare", *(["--decisions", "100000", "--train", "20000", "--repeat", "1",
                             "--e2e-decisions", "10000"] if quick else [])],
        ["bench.compare_scale", *(["--decisions", "100000"] if quick else [])],
        ["bench.log_health_look", *(["--rate", "100", "--seconds", "600", "--objects", "600",
                                     "--repeat", "2"] if quick else [])],
    ]
    failed = 0
    for module, *args in runs:
        print(f"\n=== {module} {' '.join(args)}", flush=True)
        failed |= subprocess.call([sys.executable, "-m", module, *args])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
