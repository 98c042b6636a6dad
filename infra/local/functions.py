"""Load the Lambda handlers from `functions/<name>/handler.py`, as Lambda would.

Lambda runs one invocation per execution environment at a time and starts another
environment for a concurrent one. The local stack does the same: each function keeps a pool
of separately imported handler modules, and a concurrent call takes an idle one or imports a
new one. (A handler keeps per-invocation state, such as its resolver's current event, so
sharing one module between threads would mix requests; Powertools' class-wide copy of the
event is kept per resolver by `api/resolver.py`, decision 097.)
"""

from __future__ import annotations

import importlib.util
import itertools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

_lock = threading.Lock()
_functions: dict[str, _Function] = {}
_instance_ids = itertools.count()


def _import(name: str) -> Handler:
    path = FUNCTIONS_DIR / name / "handler.py"
    spec = importlib.util.spec_from_file_location(
        f"policyhub_fn_{name}_{next(_instance_ids)}", path
    )
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Handler = module.handler
    return handler


class _Function:
    """One function: its warm environments, each used by one invocation at a time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._idle = [_import(name)]
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self._lock:
            handler = self._idle.pop() if self._idle else None
        if handler is None:
            handler = _import(self.name)  # a cold start, as a concurrent invocation gets
        try:
            return handler(event, context)
        finally:
            with self._lock:
                self._idle.append(handler)


def load_handler(name: str) -> Handler:
    with _lock:
        if name not in _functions:
            _functions[name] = _Function(name)
        return _functions[name]
