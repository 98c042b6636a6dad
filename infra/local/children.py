"""Child processes of the local stacks: start one of our modules, wait until it answers, stop it.

`make up` runs the embedded AWS in a child; the demo also runs the API in one (decisions 091
and 100). Each child dies with its parent, however the parent dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def _die_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGTERM when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(module: str, *args: str) -> subprocess.Popen[bytes]:
    """`python -m module args…` from the repository root, with this process's environment."""
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": python_path},
        preexec_fn=_die_with_parent,
    )


def wait_until_answers(url: str, process: subprocess.Popen[bytes], what: str,
                       timeout: float) -> None:
    """Until GET `url` answers 200; an error if the child exits or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the {what} exited with {process.returncode}")
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(url, timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {what} did not answer on {url} in {timeout} s")
        time.sleep(0.1)


def stop_child(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, and SIGKILL if it has not exited within `timeout`."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def until_terminated() -> None:
    """In a child: return once SIGTERM (or Ctrl-C) arrives."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
