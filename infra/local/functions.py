"""Load the Lambda handlers from `functions/<name>/handler.py`, as Lambda would."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

_lock = threading.Lock()
_loaded: dict[str, Handler] = {}


def load_handler(name: str) -> Handler:
    with _lock:
        if name not in _loaded:
            path = FUNCTIONS_DIR / name / "handler.py"
            spec = importlib.util.spec_from_file_location(f"policyhub_fn_{name}", path)
            if spec is None or spec.loader is None:
                raise FileNotFoundError(path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _loaded[name] = module.handler
        return _loaded[name]
