"""Builders of small, valid ONNX ranking policies (tests, the local stack's seed data, benchmarks).

Every model follows the policy contract: one float32 input `features` of shape [N, D] with N
dynamic, and a first output `scores` of shape [N, 1] (or [N] with `flat_output=True`).
Training exports its own models; these are the hand-built ones whose weights we choose.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT_NAME = "features"
OUTPUT_NAME = "scores"
# Opset 17 / IR 8 load in every onnxruntime release this project supports (>= 1.22).
OPSET = 17
IR_VERSION = 8

FloatArray = npt.NDArray[np.float32]


def linear_policy(
    weights: Sequence[float] | FloatArray,
    bias: float = 0.0,
    *,
    flat_output: bool = False,
    name: str = "linear_policy",
) -> bytes:
    """`scores = features @ weights + bias`; D is `len(weights)`."""
    w = np.asarray(weights, dtype=np.float32).reshape(-1, 1)
    b = np.asarray([bias], dtype=np.float32)
    nodes = [helper.make_node("Gemm", [INPUT_NAME, "w", "b"], [_pre_output(flat_output)])]
    return _build(name, w.shape[0], nodes, [("w", w), ("b", b)], flat_output)


def mlp_policy(
    w1: FloatArray,
    b1: FloatArray,
    w2: FloatArray,
    b2: float = 0.0,
    *,
    flat_output: bool = False,
    name: str = "mlp_policy",
) -> bytes:
    """`scores = relu(features @ w1 + b1) @ w2 + b2` with w1 [D, H], b1 [H], w2 [H] or [H, 1]."""
    w1 = np.asarray(w1, dtype=np.float32)
    if w1.ndim != 2:
        raise ValueError(f"w1 must be [D, H], got shape {w1.shape}")
    hidden = w1.shape[1]
    b1 = np.asarray(b1, dtype=np.float32).reshape(hidden)
    w2 = np.asarray(w2, dtype=np.float32).reshape(hidden, 1)
    b2_arr = np.asarray([b2], dtype=np.float32)
    nodes = [
        helper.make_node("Gemm", [INPUT_NAME, "w1", "b1"], ["hidden_pre"]),
        helper.make_node("Relu", ["hidden_pre"], ["hidden"]),
        helper.make_node("Gemm", ["hidden", "w2", "b2"], [_pre_output(flat_output)]),
    ]
    inits = [("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2_arr)]
    return _build(name, w1.shape[0], nodes, inits, flat_output)


def quadratic_logistic_policy(
    mean: npt.ArrayLike,
    scale: npt.ArrayLike,
    constant: float,
    linear: npt.ArrayLike,
    quadratic: npt.ArrayLike,
    *,
    name: str = "quadratic_logistic_policy",
) -> bytes:
    """`scores = sigmoid(c + z·b + z·(A z))` with `z = (features - mean) / scale`.

    A degree-2 logistic model in four small matrix products, where skl2onnx's rendering of the
    same pipeline spends one node per product column and ~50x the time (decision 125).
    """
    a = np.asarray(quadratic, dtype=np.float32)
    width = a.shape[0]
    if a.shape != (width, width):
        raise ValueError(f"quadratic must be [D, D], got shape {a.shape}")
    nodes = [
        helper.make_node("Sub", [INPUT_NAME, "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["z"]),
        helper.make_node("MatMul", ["z", "quadratic"], ["z_quadratic"]),
        helper.make_node("Mul", ["z_quadratic", "z"], ["products"]),
        helper.make_node("Gemm", ["z", "linear", "constant"], ["linear_logit"]),
        helper.make_node("Gemm", ["products", "ones", "linear_logit"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], [OUTPUT_NAME]),
    ]
    inits = [
        ("mean", np.asarray(mean, dtype=np.float32).reshape(width)),
        ("scale", np.asarray(scale, dtype=np.float32).reshape(width)),
        ("quadratic", a),
        ("linear", np.asarray(linear, dtype=np.float32).reshape(width, 1)),
        ("constant", np.asarray([constant], dtype=np.float32)),
        ("ones", np.ones((width, 1), dtype=np.float32)),
    ]
    return _build(name, width, nodes, inits, False)


def random_mlp_policy(
    input_dim: int, hidden_dim: int, *, seed: int = 0, flat_output: bool = False
) -> bytes:
    """A D→H→1 MLP with He-scaled weights drawn from `default_rng(seed)` (same seed, same bytes)."""
    if input_dim < 1 or hidden_dim < 1:
        raise ValueError("input_dim and hidden_dim must be >= 1")
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((input_dim, hidden_dim)) * np.sqrt(2.0 / input_dim)).astype(
        np.float32
    )
    b1 = (rng.standard_normal(hidden_dim) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal(hidden_dim) * np.sqrt(1.0 / hidden_dim)).astype(np.float32)
    name = f"mlp_{input_dim}x{hidden_dim}"
    return mlp_policy(w1, b1, w2, 0.0, flat_output=flat_output, name=name)


def repeated_layer_policy(input_dim: int, width: int, depth: int, *, seed: int = 0) -> bytes:
    """A D→W MLP followed by the same WxW ReLU layer `depth` times, then W→1.

    Its compute grows with `depth` while the artifact holds one square layer: a policy that
    is slow to score on purpose (latency tests) without nearing the artifact size cap.
    """
    if input_dim < 1 or width < 1 or depth < 0:
        raise ValueError("input_dim and width must be >= 1 and depth >= 0")
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((input_dim, width)) * np.sqrt(2.0 / input_dim)).astype(np.float32)
    square = (rng.standard_normal((width, width)) * np.sqrt(2.0 / width)).astype(np.float32)
    w2 = (rng.standard_normal((width, 1)) * np.sqrt(1.0 / width)).astype(np.float32)
    zeros = np.zeros(width, dtype=np.float32)
    nodes = [
        helper.make_node("Gemm", [INPUT_NAME, "w1", "b"], ["h0_pre"]),
        helper.make_node("Relu", ["h0_pre"], ["h0"]),
    ]
    for i in range(depth):
        nodes.append(helper.make_node("Gemm", [f"h{i}", "square", "b"], [f"h{i + 1}_pre"]))
        nodes.append(helper.make_node("Relu", [f"h{i + 1}_pre"], [f"h{i + 1}"]))
    nodes.append(helper.make_node("Gemm", [f"h{depth}", "w2"], [OUTPUT_NAME]))
    inits = [("w1", w1), ("square", square), ("b", zeros), ("w2", w2)]
    return _build(f"repeated_{input_dim}x{width}x{depth}", input_dim, nodes, inits, False)


def random_linear_policy(input_dim: int, *, seed: int = 0, flat_output: bool = False) -> bytes:
    if input_dim < 1:
        raise ValueError("input_dim must be >= 1")
    rng = np.random.default_rng(seed)
    weights = (rng.standard_normal(input_dim) / np.sqrt(input_dim)).astype(np.float32)
    return linear_policy(weights, flat_output=flat_output, name=f"linear_{input_dim}")


def _pre_output(flat_output: bool) -> str:
    return "scores_column" if flat_output else OUTPUT_NAME


def _build(
    name: str,
    input_dim: int,
    nodes: list[onnx.NodeProto],
    initializers: list[tuple[str, FloatArray]],
    flat_output: bool,
) -> bytes:
    if flat_output:
        nodes.append(helper.make_node("Squeeze", ["scores_column", "squeeze_axes"], [OUTPUT_NAME]))
        out_shape: list[int | str] = ["N"]
    else:
        out_shape = ["N", 1]
    inits = [numpy_helper.from_array(arr, name=n) for n, arr in initializers]
    if flat_output:
        inits.append(numpy_helper.from_array(np.asarray([1], dtype=np.int64), "squeeze_axes"))
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", input_dim])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, out_shape)],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="policyhub",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model, full_check=True)
    return bytes(model.SerializeToString())
