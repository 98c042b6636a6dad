from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from policyhub.ml.onnx_models import (
    INPUT_NAME,
    OUTPUT_NAME,
    linear_policy,
    mlp_policy,
    random_linear_policy,
    random_mlp_policy,
    repeated_layer_policy,
)


def run(model: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    return out


def test_linear_policy_scores_are_features_dot_weights_plus_bias() -> None:
    x = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]], dtype=np.float32)
    out = run(linear_policy([0.5, -1.0, 2.0], bias=0.25), x)
    np.testing.assert_allclose(out, [[4.75], [2.25]], rtol=1e-6)


def test_mlp_policy_matches_a_numpy_forward_pass() -> None:
    rng = np.random.default_rng(3)
    w1 = rng.standard_normal((5, 4)).astype(np.float32)
    b1 = rng.standard_normal(4).astype(np.float32)
    w2 = rng.standard_normal(4).astype(np.float32)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    expected = np.maximum(x @ w1 + b1, 0.0) @ w2 + 0.5
    np.testing.assert_allclose(run(mlp_policy(w1, b1, w2, 0.5), x)[:, 0], expected, rtol=1e-5)


@pytest.mark.parametrize(
    "model", [random_mlp_policy(8, 4, flat_output=True), random_linear_policy(8, flat_output=True)]
)
def test_flat_output_gives_one_score_per_row(model: bytes) -> None:
    assert run(model, np.ones((3, 8), dtype=np.float32)).shape == (3,)


def test_models_take_any_number_of_rows_and_declare_the_contract_shapes() -> None:
    session = ort.InferenceSession(random_mlp_policy(32, 64), providers=["CPUExecutionProvider"])
    [inp] = session.get_inputs()
    assert (inp.name, inp.type, inp.shape[1]) == (INPUT_NAME, "tensor(float)", 32)
    assert not isinstance(inp.shape[0], int)
    assert session.run(None, {INPUT_NAME: np.zeros((100, 32), np.float32)})[0].shape == (100, 1)


def test_random_models_are_reproducible_from_their_seed() -> None:
    assert random_mlp_policy(6, 3, seed=7) == random_mlp_policy(6, 3, seed=7)
    assert random_mlp_policy(6, 3, seed=7) != random_mlp_policy(6, 3, seed=8)
    assert random_linear_policy(6, seed=1) == random_linear_policy(6, seed=1)


def test_mlp_policy_rejects_a_first_layer_that_is_not_a_matrix() -> None:
    with pytest.raises(ValueError, match="w1"):
        mlp_policy(np.ones(4, np.float32), np.ones(4, np.float32), np.ones(4, np.float32))


def test_repeated_layer_policy_costs_compute_by_depth_but_bytes_by_width_only() -> None:
    shallow = repeated_layer_policy(6, 32, 1, seed=2)
    deep = repeated_layer_policy(6, 32, 40, seed=2)
    assert len(deep) - len(shallow) < 60 * 39  # node records only: one shared square layer
    x = np.random.default_rng(1).standard_normal((7, 6)).astype(np.float32)
    out = run(deep, x)
    assert out.shape == (7, 1) and np.isfinite(out).all()
    gemms = [n for n in onnx.load_from_string(deep).graph.node if n.op_type == "Gemm"]
    assert len(gemms) == 40 + 2
