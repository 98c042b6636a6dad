"""Export a fitted reward model as a policy artifact and prove it scores like the original.

The artifact follows the policy contract: one float32 input ``features`` [N, D] (N dynamic), and
a first (only) output ``scores`` [N, 1] = the predicted expected reward.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType

from policyhub.ml.onnx_models import quadratic_logistic_policy
from policyhub.ml.reward_model import QuadraticLogit
from policyhub.ml.scorers import onnx_scorer, sklearn_scorer

Float32Array = npt.NDArray[np.float32]
INPUT_NAME = "features"
OUTPUT_NAME = "scores"
TARGET_OPSET = 17  # loads in every onnxruntime this project supports (>= 1.22)
DEFAULT_TOLERANCE = 1e-4


class OnnxMismatchError(RuntimeError):
    """The exported model does not reproduce the trained model's scores."""

    def __init__(self, max_abs_diff: float, tolerance: float) -> None:
        super().__init__(
            f"ONNX scores differ from the trained model by up to {max_abs_diff:.3g} "
            f"(tolerance {tolerance:.3g})"
        )
        self.max_abs_diff = max_abs_diff


def export_onnx(model: Any, feature_dim: int) -> bytes:
    if hasattr(model, "steps") and (quadratic := QuadraticLogit.of(model)) is not None:
        return quadratic_logistic_policy(
            quadratic.mean, quadratic.scale, quadratic.constant, quadratic.linear,
            quadratic.quadratic, name="pairwise_logistic",
        )  # fmt: skip
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    is_classifier = hasattr(model, "predict_proba")
    options = {id(final): {"zipmap": False}} if is_classifier else None
    proto = to_onnx(
        model,
        initial_types=[(INPUT_NAME, FloatTensorType([None, feature_dim]))],
        target_opset={"": TARGET_OPSET, "ai.onnx.ml": 1},
        options=options,
    )
    graph = proto.graph
    if is_classifier:
        # Column 1 of the class probabilities: P(reward = 1).
        source = next(o.name for o in graph.output if o.name != "label")
        graph.initializer.extend(
            numpy_helper.from_array(np.array([value], dtype=np.int64), name)
            for name, value in (("scores_start", 1), ("scores_end", 2), ("scores_axis", 1))
        )
        graph.node.append(
            helper.make_node(
                "Slice",
                [source, "scores_start", "scores_end", "scores_axis"],
                [OUTPUT_NAME],
                name="policy_scores",
            )
        )
    else:
        source = graph.output[0].name
        identity = helper.make_node("Identity", [source], [OUTPUT_NAME], name="policy_scores")
        graph.node.append(identity)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [None, 1]))
    onnx.checker.check_model(proto)
    data: bytes = proto.SerializeToString()
    return data


def verify_onnx(
    artifact: bytes, model: Any, rows: Float32Array, tolerance: float = DEFAULT_TOLERANCE
) -> float:
    """Max |onnx - sklearn| over ``rows``; raises `OnnxMismatchError` above ``tolerance``."""
    if rows.shape[0] == 0:
        raise ValueError("verification needs at least one row")
    onnx_scores = onnx_scorer(artifact)(rows)
    expected = sklearn_scorer(model)(rows)  # the pipeline itself, not a rewriting of it
    diff = float(np.max(np.abs(onnx_scores - expected)))
    if not diff <= tolerance:
        raise OnnxMismatchError(diff, tolerance)
    return diff
