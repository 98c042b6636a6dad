"""What `build_layers.sh` builds and checks, from `infra/stack/packaging.py` (decision 117).

    python -m infra.scripts.layer_plan serving|image|check-sizes <deps dir>
"""

from __future__ import annotations

import sys
from pathlib import Path

from infra.stack.packaging import check_sizes, image_requirements, serving_requirements


def main(argv: list[str]) -> int:
    commands = {
        "serving": serving_requirements,
        "image": image_requirements,
    }
    if len(argv) == 2 and argv[0] == "check-sizes":
        return check_sizes(Path(argv[1]))
    if len(argv) != 1 or argv[0] not in commands:
        usage = "|".join([*commands, "check-sizes <deps layer dir>"])
        print(f"usage: python -m infra.scripts.layer_plan {usage}", file=sys.stderr)
        return 2
    print("\n".join(commands[argv[0]]()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
