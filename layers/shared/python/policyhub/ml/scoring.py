"""ONNX policy sessions for the hot path: verified loading from bytes, an LRU cache, scoring.

A session is only ever created from the artifact's bytes after their sha256 matched the one the
registry holds (checked here again, whatever the caller did) and their size is under the cap
(invariant 3). Every failure is a `PolicyServingError` subclass so the rank service can fall back
to production, then to retrieval order, and count the failure against the version (invariant 4).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

MIB = 1024 * 1024
DEFAULT_MAX_ARTIFACT_BYTES = 16 * MIB
DEFAULT_MAX_SESSIONS = 32
DEFAULT_MAX_CACHED_BYTES = 256 * MIB

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

Matrix = npt.NDArray[np.float32]
Scores = npt.NDArray[np.float32]


class PolicyServingError(Exception):
    """A policy could not be loaded or could not score; the caller falls back."""

    def __init__(self, sha256: str, message: str) -> None:
        super().__init__(message)
        self.sha256 = sha256


class ArtifactTooLargeError(PolicyServingError):
    pass


class ArtifactIntegrityError(PolicyServingError):
    """The bytes are not the artifact the registry recorded (sha256 mismatch)."""


class PolicyLoadError(PolicyServingError):
    """onnxruntime rejected the artifact, or its inputs/outputs break the policy contract."""


class PolicyNotLoadedError(PolicyServingError):
    pass


class PolicyRunError(PolicyServingError):
    """onnxruntime failed while running the model (e.g. the matrix does not fit its input)."""


class PolicyOutputError(PolicyServingError):
    """The model ran but its scores are unusable: wrong shape or not finite."""


def session_options() -> ort.SessionOptions:
    """Options for a Lambda container: one thread, no thread pools to spin, full graph rewrites."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def create_session(data: bytes) -> Any:
    """An InferenceSession from bytes (never a path) on the CPU provider; raises what ORT raises."""
    return ort.InferenceSession(data, sess_options=session_options(),
                                providers=["CPUExecutionProvider"])


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_artifact(expected_sha256: str, data: bytes, max_bytes: int) -> str:
    """Check size then digest; return the normalised (lower-case) sha256."""
    expected = expected_sha256.lower()
    if not _SHA256_HEX.fullmatch(expected):
        raise ArtifactIntegrityError(expected_sha256, "expected sha256 is not 64 hex digits")
    if len(data) > max_bytes:
        raise ArtifactTooLargeError(
            expected, f"artifact is {len(data)} bytes, more than the {max_bytes}-byte cap"
        )
    actual = sha256_hex(data)
    if actual != expected:
        raise ArtifactIntegrityError(
            expected, f"artifact sha256 {actual} does not match the registry's {expected}"
        )
    return expected


@dataclass(frozen=True, slots=True)
class PolicySession:
    """One loaded policy with its input/output names resolved once."""

    sha256: str
    size_bytes: int
    input_dim: int | None
    """The model's declared feature width D, or None when that dimension is dynamic."""
    _session: Any
    _output_names: list[str]
    _input_name: str

    def score(self, matrix: Matrix) -> Scores:
        """Scores of the N rows of `matrix` ([N, D] float32) as float32 [N]."""
        try:
            out = self._session.run(self._output_names, {self._input_name: matrix})[0]
        except Exception as exc:  # onnxruntime raises several unrelated exception types
            raise PolicyRunError(self.sha256, f"policy failed to run: {exc}") from exc
        n = matrix.shape[0]
        if not isinstance(out, np.ndarray) or not (
            out.shape == (n,) or out.shape == (n, 1)
        ):
            shape = getattr(out, "shape", type(out).__name__)
            raise PolicyOutputError(
                self.sha256, f"policy output has shape {shape}, expected ({n},) or ({n}, 1)"
            )
        scores: Scores = out.reshape(n)
        if scores.dtype != np.float32:
            scores = scores.astype(np.float32)
        if not np.isfinite(scores).all():
            raise PolicyOutputError(self.sha256, "policy produced non-finite scores")
        return scores


def open_policy(sha256: str, data: bytes, *, max_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES) -> (
    PolicySession
):
    """Verify the bytes against `sha256` and the size cap, then create the session."""
    digest = verify_artifact(sha256, data, max_bytes)
    try:
        session = create_session(data)
    except Exception as exc:  # onnxruntime's load errors have no common base class
        raise PolicyLoadError(digest, f"onnxruntime could not load the artifact: {exc}") from exc
    inputs = session.get_inputs()
    outputs = session.get_outputs()
    if len(inputs) != 1 or not outputs:
        raise PolicyLoadError(
            digest,
            f"a policy needs exactly one input and at least one output, "
            f"got {len(inputs)} inputs and {len(outputs)} outputs",
        )
    shape = inputs[0].shape
    last = shape[-1] if isinstance(shape, list | tuple) and shape else None
    return PolicySession(
        sha256=digest,
        size_bytes=len(data),
        input_dim=last if isinstance(last, int) else None,
        _session=session,
        _output_names=[outputs[0].name],
        _input_name=inputs[0].name,
    )


class SessionCache:
    """Policy sessions keyed by artifact sha256, least recently used evicted first.

    Bounded by session count and by total artifact bytes (a session's memory is a small multiple
    of its artifact). Thread-safe; a slow load happens outside the lock, so two threads missing
    the same sha256 at once may both load it, and the first one stored wins.
    """

    def __init__(
        self,
        *,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        max_cached_bytes: int = DEFAULT_MAX_CACHED_BYTES,
        max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
    ) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        self.max_sessions = max_sessions
        self.max_cached_bytes = max_cached_bytes
        self.max_artifact_bytes = max_artifact_bytes
        self._sessions: OrderedDict[str, PolicySession] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, sha256: object) -> bool:
        return isinstance(sha256, str) and sha256.lower() in self._sessions

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def get(self, sha256: str) -> PolicySession | None:
        key = sha256.lower()
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                self._sessions.move_to_end(key)
            return session

    def load(self, sha256: str, data: bytes) -> PolicySession:
        """The cached session for `sha256`, or a new one from `data` after verifying it."""
        cached = self.get(sha256)
        if cached is not None:
            return cached
        return self._store(open_policy(sha256, data, max_bytes=self.max_artifact_bytes))

    def get_or_load(self, sha256: str, fetch: Callable[[], bytes]) -> PolicySession:
        """Like `load`, but only calls `fetch` (e.g. an S3 read) on a cache miss."""
        cached = self.get(sha256)
        if cached is not None:
            return cached
        return self._store(open_policy(sha256, fetch(), max_bytes=self.max_artifact_bytes))

    def score(self, sha256: str, matrix: Matrix) -> Scores:
        session = self.get(sha256)
        if session is None:
            raise PolicyNotLoadedError(sha256, f"no session loaded for artifact {sha256}")
        return session.score(matrix)

    def evict(self, sha256: str) -> bool:
        with self._lock:
            session = self._sessions.pop(sha256.lower(), None)
            if session is None:
                return False
            self._cached_bytes -= session.size_bytes
            return True

    def _store(self, session: PolicySession) -> PolicySession:
        with self._lock:
            existing = self._sessions.get(session.sha256)
            if existing is not None:
                self._sessions.move_to_end(session.sha256)
                return existing
            self._sessions[session.sha256] = session
            self._cached_bytes += session.size_bytes
            # The newest session always stays, even if it alone exceeds the byte budget.
            while len(self._sessions) > 1 and (
                len(self._sessions) > self.max_sessions
                or self._cached_bytes > self.max_cached_bytes
            ):
                _, evicted = self._sessions.popitem(last=False)
                self._cached_bytes -= evicted.size_bytes
            return session
