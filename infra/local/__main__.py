"""`python -m infra.local up|demo`."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "up"
    if command == "up":
        from infra.local.stack import up

        up()
        return 0
    if command == "demo":
        from infra.local.demo import main as demo

        return demo()
    print(f"usage: python -m infra.local up|demo   (unknown command {command!r})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
