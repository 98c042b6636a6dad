"""Validation of an uploaded ONNX policy before it is registered (POST /v1/policies).

The artifact must load in onnxruntime from bytes exactly as serving will load it, take one float32
[N, D] input with D = context_dim + item_dim + 1, and give finite scores of shape [N] or [N, 1]
on a probe batch. Every failure is an `InvalidArtifactError` (422) with a sentence a user can act
on; onnxruntime's own text is shortened to its first line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from policyhub.domain.errors import ErrorDetail, PolicyHubError
from policyhub.ml.scoring import DEFAULT_MAX_ARTIFACT_BYTES, create_session, sha256_hex

ARTIFACT_FIELD = "body.artifact_base64"
FLOAT_INPUT = "tensor(float)"
FLOAT_OUTPUTS = frozenset({"tensor(float)", "tensor(double)"})
# One row catches models that squeeze [1, 1] to a scalar; an odd batch catches fixed batch sizes.
PROBE_BATCHES = (1, 7)
PROBE_SEED = 20302

_ORT_PREFIX = re.compile(r"^\s*\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*")


class ArtifactProblem(StrEnum):
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    NOT_LOADABLE = "not_loadable"
    INPUT_COUNT = "input_count"
    INPUT_TYPE = "input_type"
    INPUT_SHAPE = "input_shape"
    NO_OUTPUT = "no_output"
    OUTPUT_TYPE = "output_type"
    OUTPUT_SHAPE = "output_shape"
    RUN_FAILED = "run_failed"
    NON_FINITE_OUTPUT = "non_finite_output"


class InvalidArtifactError(PolicyHubError):
    """The uploaded artifact is not a usable policy for the declared feature schema (422)."""

    def __init__(self, problem: ArtifactProblem, message: str) -> None:
        super().__init__("invalid_artifact", message, [ErrorDetail(ARTIFACT_FIELD, message)])
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    sha256: str
    size_bytes: int
    input_name: str
    output_name: str
    input_dim: int
    """D = context_dim + item_dim + 1, the width the model was checked with."""
    output_rank: int
    """1 for [N] scores, 2 for [N, 1]."""
    producer: str


def validate_policy_artifact(
    data: bytes,
    context_dim: int,
    item_dim: int,
    max_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
) -> ArtifactInfo:
    if context_dim < 0 or item_dim < 0:
        raise ValueError("feature dimensions must be >= 0")
    if not data:
        raise InvalidArtifactError(ArtifactProblem.EMPTY, "The artifact is empty.")
    if len(data) > max_bytes:
        raise InvalidArtifactError(
            ArtifactProblem.TOO_LARGE,
            f"The artifact is {len(data)} bytes; policies are limited to {max_bytes} bytes.",
        )
    width = context_dim + item_dim + 1
    try:
        session = create_session(data)
    except Exception as exc:  # onnxruntime's load errors have no common base class
        raise InvalidArtifactError(
            ArtifactProblem.NOT_LOADABLE,
            f"The artifact is not an ONNX model onnxruntime can load ({_first_line(exc)}).",
        ) from exc
    input_name = _check_input(session, width)
    output_name = _check_output_declaration(session)
    output_rank = 0
    for rows in PROBE_BATCHES:
        output_rank = _probe(session, input_name, output_name, rows, width)
    meta = session.get_modelmeta()
    return ArtifactInfo(
        sha256=sha256_hex(data),
        size_bytes=len(data),
        input_name=input_name,
        output_name=output_name,
        input_dim=width,
        output_rank=output_rank,
        producer=str(getattr(meta, "producer_name", "") or ""),
    )


def _check_input(session: Any, width: int) -> str:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        raise InvalidArtifactError(
            ArtifactProblem.INPUT_COUNT,
            f"A policy must have exactly one input, the [N, {width}] feature matrix; "
            f"this model has {len(inputs)} ({names}).",
        )
    inp = inputs[0]
    if inp.type != FLOAT_INPUT:
        raise InvalidArtifactError(
            ArtifactProblem.INPUT_TYPE,
            f"The policy's input {inp.name!r} must be float32 ({FLOAT_INPUT}); it is {inp.type}.",
        )
    shape = inp.shape
    if isinstance(shape, list | tuple) and shape:
        if len(shape) != 2:
            raise InvalidArtifactError(
                ArtifactProblem.INPUT_SHAPE,
                f"The policy's input must have shape [N, {width}]; it is declared {_fmt(shape)}.",
            )
        batch, last = shape
        if isinstance(batch, int):
            raise InvalidArtifactError(
                ArtifactProblem.INPUT_SHAPE,
                f"The policy's batch dimension must be dynamic (any number of candidates); "
                f"it is fixed to {batch}.",
            )
        if isinstance(last, int) and last != width:
            raise InvalidArtifactError(
                ArtifactProblem.INPUT_SHAPE,
                f"The policy expects {last} features per candidate but the feature schema gives "
                f"{width} (context_dim + item_dim + 1 for the retrieval score).",
            )
    return str(inp.name)


def _check_output_declaration(session: Any) -> str:
    outputs = session.get_outputs()
    if not outputs:
        raise InvalidArtifactError(ArtifactProblem.NO_OUTPUT, "The policy has no output.")
    out = outputs[0]
    if out.type not in FLOAT_OUTPUTS:
        raise InvalidArtifactError(
            ArtifactProblem.OUTPUT_TYPE,
            f"The policy's first output {out.name!r} must be float scores; it is {out.type}.",
        )
    shape = out.shape
    if isinstance(shape, list | tuple) and shape:
        bad_rank = len(shape) not in (1, 2)
        bad_column = len(shape) == 2 and isinstance(shape[1], int) and shape[1] != 1
        if bad_rank or bad_column:
            raise InvalidArtifactError(
                ArtifactProblem.OUTPUT_SHAPE,
                f"The policy's first output must have shape [N] or [N, 1]; "
                f"it is declared {_fmt(shape)}.",
            )
    return str(out.name)


def _probe(session: Any, input_name: str, output_name: str, rows: int, width: int) -> int:
    batch = np.random.default_rng(PROBE_SEED).standard_normal((rows, width)).astype(np.float32)
    try:
        result = session.run([output_name], {input_name: batch})[0]
    except Exception as exc:  # onnxruntime's run errors have no common base class
        raise InvalidArtifactError(
            ArtifactProblem.RUN_FAILED,
            f"The policy failed on a test batch of {rows} x {width} features "
            f"({_first_line(exc)}).",
        ) from exc
    shape = tuple(getattr(result, "shape", ()))
    if shape not in ((rows,), (rows, 1)):
        raise InvalidArtifactError(
            ArtifactProblem.OUTPUT_SHAPE,
            f"For {rows} candidate(s) the policy returned scores of shape {list(shape)}; "
            f"expected [{rows}] or [{rows}, 1].",
        )
    if not np.isfinite(np.asarray(result, dtype=np.float64)).all():
        raise InvalidArtifactError(
            ArtifactProblem.NON_FINITE_OUTPUT,
            f"The policy returned NaN or infinite scores on a test batch of {rows} candidate(s).",
        )
    return len(shape)


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = _ORT_PREFIX.sub("", str(exc)).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _fmt(shape: list[Any] | tuple[Any, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
