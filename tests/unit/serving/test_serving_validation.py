from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from policyhub.ml.onnx_models import random_linear_policy, random_mlp_policy
from policyhub.ml.validation import (
    ARTIFACT_FIELD,
    ArtifactProblem,
    InvalidArtifactError,
    validate_policy_artifact,
)

CONTEXT_DIM, ITEM_DIM = 4, 3
WIDTH = CONTEXT_DIM + ITEM_DIM + 1


def graph_model(
    nodes: list[Any],
    inputs: list[tuple[str, int, list[int | str | None]]],
    outputs: list[tuple[str, int, list[int | str | None]]],
    initializers: dict[str, np.ndarray] | None = None,
) -> bytes:
    graph = helper.make_graph(
        nodes,
        "test_graph",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        initializer=[numpy_helper.from_array(a, k) for k, a in (initializers or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return bytes(model.SerializeToString())


def matmul_model(
    input_shape: list[int | str | None],
    weights: np.ndarray,
    *,
    input_type: int = TensorProto.FLOAT,
    output_shape: list[int | str | None] | None = None,
) -> bytes:
    return graph_model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [("x", input_type, input_shape)],
        [("y", input_type, output_shape or ["N", weights.shape[1]])],
        {"w": weights},
    )


def problem_of(data: bytes, max_bytes: int = 1 << 20) -> InvalidArtifactError:
    with pytest.raises(InvalidArtifactError) as info:
        validate_policy_artifact(data, CONTEXT_DIM, ITEM_DIM, max_bytes)
    return info.value


def test_a_valid_mlp_is_described_by_its_artifact_info() -> None:
    data = random_mlp_policy(WIDTH, 16)
    info = validate_policy_artifact(data, CONTEXT_DIM, ITEM_DIM, max_bytes=1 << 20)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.size_bytes == len(data)
    assert (info.input_name, info.output_name) == ("features", "scores")
    assert (info.input_dim, info.output_rank, info.producer) == (WIDTH, 2, "policyhub")


def test_a_flat_score_output_is_accepted() -> None:
    data = random_linear_policy(WIDTH, flat_output=True)
    assert validate_policy_artifact(data, CONTEXT_DIM, ITEM_DIM).output_rank == 1


def test_a_dynamic_feature_dimension_is_accepted_when_the_model_runs() -> None:
    data = graph_model(
        [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)],
        [("x", TensorProto.FLOAT, ["N", "D"])],
        [("y", TensorProto.FLOAT, ["N", 1])],
        {"axes": np.array([1], dtype=np.int64)},
    )
    assert validate_policy_artifact(data, CONTEXT_DIM, ITEM_DIM).input_dim == WIDTH


def test_every_failure_is_a_422_on_the_artifact_field_with_a_plain_message() -> None:
    err = problem_of(b"\x00\x01 not onnx")
    assert (err.status, err.code, err.problem) == (422, "invalid_artifact", "not_loadable")
    assert err.details[0].field == ARTIFACT_FIELD
    assert "ONNXRuntimeError" not in err.message
    assert "\n" not in err.message
    assert err.message.startswith("The artifact is not an ONNX model")


def test_an_empty_artifact_is_rejected() -> None:
    assert problem_of(b"").problem is ArtifactProblem.EMPTY


def test_an_artifact_over_the_cap_is_rejected_before_loading() -> None:
    data = random_mlp_policy(WIDTH, 16)
    err = problem_of(data, max_bytes=len(data) - 1)
    assert err.problem is ArtifactProblem.TOO_LARGE
    assert str(len(data) - 1) in err.message


def test_a_feature_width_that_differs_from_the_schema_names_both_widths() -> None:
    err = problem_of(random_mlp_policy(WIDTH + 1, 4))
    assert err.problem is ArtifactProblem.INPUT_SHAPE
    assert f"expects {WIDTH + 1} features" in err.message
    assert f"gives {WIDTH}" in err.message


def test_a_model_with_two_inputs_is_rejected() -> None:
    data = graph_model(
        [helper.make_node("Add", ["a", "b"], ["y"])],
        [("a", TensorProto.FLOAT, ["N", WIDTH]), ("b", TensorProto.FLOAT, ["N", WIDTH])],
        [("y", TensorProto.FLOAT, ["N", WIDTH])],
    )
    err = problem_of(data)
    assert err.problem is ArtifactProblem.INPUT_COUNT
    assert "'a', 'b'" in err.message


def test_a_double_precision_input_is_rejected() -> None:
    data = matmul_model(["N", WIDTH], np.ones((WIDTH, 1)), input_type=TensorProto.DOUBLE)
    assert problem_of(data).problem is ArtifactProblem.INPUT_TYPE


def test_a_fixed_batch_size_is_rejected() -> None:
    data = matmul_model([1, WIDTH], np.ones((WIDTH, 1), np.float32))
    err = problem_of(data)
    assert err.problem is ArtifactProblem.INPUT_SHAPE
    assert "dynamic" in err.message


def test_an_input_that_is_not_a_matrix_is_rejected() -> None:
    data = matmul_model(["N", 1, WIDTH], np.ones((WIDTH, 1), np.float32),
                        output_shape=["N", 1, 1])
    assert problem_of(data).problem is ArtifactProblem.INPUT_SHAPE


def test_more_than_one_score_per_candidate_is_rejected() -> None:
    data = matmul_model(["N", WIDTH], np.ones((WIDTH, 2), np.float32))
    assert problem_of(data).problem is ArtifactProblem.OUTPUT_SHAPE


def test_an_integer_output_is_rejected() -> None:
    data = graph_model(
        [helper.make_node("MatMul", ["x", "w"], ["s"]),
         helper.make_node("Cast", ["s"], ["y"], to=TensorProto.INT64)],
        [("x", TensorProto.FLOAT, ["N", WIDTH])],
        [("y", TensorProto.INT64, ["N", 1])],
        {"w": np.ones((WIDTH, 1), np.float32)},
    )
    assert problem_of(data).problem is ArtifactProblem.OUTPUT_TYPE


def test_a_model_that_squeezes_one_candidate_to_a_scalar_is_rejected() -> None:
    data = graph_model(
        [helper.make_node("MatMul", ["x", "w"], ["s"]), helper.make_node("Squeeze", ["s"], ["y"])],
        [("x", TensorProto.FLOAT, ["N", WIDTH])],
        [("y", TensorProto.FLOAT, None)],  # type: ignore[list-item]
        {"w": np.ones((WIDTH, 1), np.float32)},
    )
    err = problem_of(data)
    assert err.problem is ArtifactProblem.OUTPUT_SHAPE
    assert "For 1 candidate(s)" in err.message


def test_a_model_that_fails_at_run_time_is_rejected() -> None:
    # Declares a dynamic width but its weights only fit five features.
    data = matmul_model(["N", None], np.ones((5, 1), np.float32))
    err = problem_of(data)
    assert err.problem is ArtifactProblem.RUN_FAILED
    assert f"1 x {WIDTH}" in err.message


def test_a_model_producing_nan_scores_is_rejected() -> None:
    weights = np.full((WIDTH, 1), np.nan, dtype=np.float32)
    assert problem_of(matmul_model(["N", WIDTH], weights)).problem is (
        ArtifactProblem.NON_FINITE_OUTPUT
    )


def test_a_model_reading_external_data_files_is_rejected() -> None:
    weights = numpy_helper.from_array(np.ones((WIDTH, 1), np.float32), "w")
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in {"location": "../../etc/hostname", "offset": "0", "length": "32"}.items():
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "exfiltrate",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    assert problem_of(model.SerializeToString()).problem is ArtifactProblem.NOT_LOADABLE
