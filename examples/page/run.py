"""Run the product page's three code examples against a policyhub API (the local stack by
default), in the page's order or one at a time.

    make up                                   # in another terminal; it prints these lines
    export HEBBRIX_API_KEY="$(cat .local/admin-key)"
    .venv/bin/python examples/page/run.py     # status, promote, emergency rollback, in order
    .venv/bin/python examples/page/run.py emergency_rollback

The examples (`check_policy_status.py`, `promote_new_policy.py`, `emergency_rollback.py` beside
this file) are the page's code byte for byte (seed/000_20302d67a7525b5e.txt). On the page they
are one session: "Check Policy Status" imports requests and sets `BASE` and `H` (the key from
`HEBBRIX_API_KEY`), the other two use them; so each of the other two runs after that preamble.
The one change is `BASE`: the page's `https://api.hebbrix.com/v1` becomes `POLICYHUB_API_URL`
(default `http://127.0.0.1:3000/v1`, `make up`'s API), as API.md allows (only BASE and the key
differ). Before the first example the key is tried once, so a missing or refused key is one
clear line instead of the examples' KeyError on an error body.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
EXAMPLES = ("check_policy_status", "promote_new_policy", "emergency_rollback")
PAGE_BASE = 'BASE = "https://api.hebbrix.com/v1"'
DEFAULT_API_URL = "http://127.0.0.1:3000/v1"
KEY_VARIABLE = "HEBBRIX_API_KEY"


def api_url() -> str:
    return os.environ.get("POLICYHUB_API_URL", DEFAULT_API_URL).rstrip("/")


def page_code(name: str, base: str) -> tuple[str, str]:
    """(preamble, example): the status example's lines up to `H = ...` with BASE pointed at
    `base` (empty for the status example itself, which holds them), and the example."""
    status = (HERE / "check_policy_status.py").read_text()
    if status.count(PAGE_BASE) != 1:
        raise SystemExit(f"check_policy_status.py no longer sets {PAGE_BASE}")
    status = status.replace(PAGE_BASE, f"BASE = {base!r}")
    if name == "check_policy_status":
        return "", status
    head = status.split("\n")
    end = next(i for i, line in enumerate(head) if line.startswith("H = "))
    return "\n".join(head[: end + 1]) + "\n", (HERE / f"{name}.py").read_text()


def key_problem(base: str) -> str | None:
    """Why the examples cannot run with this key against this API, or None."""
    key = os.environ.get(KEY_VARIABLE)
    if not key:
        return (
            f"{KEY_VARIABLE} is not set: the page's examples read the API key from it "
            f'(local stack: export {KEY_VARIABLE}="$(cat .local/admin-key)")'
        )
    try:
        r = requests.get(
            f"{base}/policies/status", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
    except requests.ConnectionError:
        return f"cannot reach {base}: is the API up? (local stack: `make up`)"
    if r.status_code in (401, 403):
        return (
            f"{base} refused {KEY_VARIABLE} ({r.status_code}): "
            f"{r.json().get('error', {}).get('message', r.text[:200])}. The local stack makes a "
            "new key at each start: read .local/admin-key again"
        )
    return None


def run(name: str, base: str) -> None:
    preamble, example = page_code(name, base)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    if preamble:
        exec(compile(preamble, str(HERE / "check_policy_status.py"), "exec"), namespace)  # noqa: S102
    exec(compile(example, str(HERE / f"{name}.py"), "exec"), namespace)  # noqa: S102


def main(argv: list[str]) -> int:
    names = [a.removesuffix(".py") for a in argv] or list(EXAMPLES)
    unknown = [n for n in names if n not in EXAMPLES]
    if unknown:
        print(f"unknown example {unknown[0]!r}; the page's are {', '.join(EXAMPLES)}",
              file=sys.stderr)  # fmt: skip
        return 2
    base = api_url()
    problem = key_problem(base)
    if problem:
        print(f"examples/page/run.py: {problem}", file=sys.stderr)
        return 2
    for name in names:
        if len(names) > 1:
            print(f"# {name}.py", flush=True)
        run(name, base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
