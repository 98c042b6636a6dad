from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from policyhub.ml.onnx_models import linear_policy, random_mlp_policy
from policyhub.ml.scoring import (
    ArtifactIntegrityError,
    ArtifactTooLargeError,
    PolicyLoadError,
    PolicyNotLoadedError,
    PolicyOutputError,
    PolicyRunError,
    PolicyServingError,
    SessionCache,
    open_policy,
    session_options,
)

MLP = random_mlp_policy(8, 16, seed=1)
MLP_FLAT = random_mlp_policy(8, 16, seed=1, flat_output=True)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def two_column_policy(dim: int) -> bytes:
    """Breaks the contract: two scores per row."""
    w = numpy_helper.from_array(np.ones((dim, 2), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "two_columns",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", dim])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return bytes(model.SerializeToString())


def returning(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def matrix(rows: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)


# ---------------------------------------------------------------- loading


def test_a_policy_loads_only_when_its_bytes_match_the_expected_sha256() -> None:
    other = random_mlp_policy(8, 16, seed=2)
    with pytest.raises(ArtifactIntegrityError, match="does not match"):
        SessionCache().load(sha(other), MLP)


def test_a_malformed_expected_sha256_is_an_integrity_error() -> None:
    with pytest.raises(ArtifactIntegrityError, match="64 hex"):
        open_policy("abc", MLP)


def test_an_upper_case_sha256_is_accepted_and_normalised() -> None:
    session = open_policy(sha(MLP).upper(), MLP)
    assert session.sha256 == sha(MLP)


def test_an_artifact_over_the_size_cap_is_refused_before_loading() -> None:
    with pytest.raises(ArtifactTooLargeError, match="cap"):
        SessionCache(max_artifact_bytes=len(MLP) - 1).load(sha(MLP), MLP)


def test_bytes_that_are_not_onnx_raise_a_load_error() -> None:
    garbage = b"definitely not a protobuf"
    with pytest.raises(PolicyLoadError, match="could not load"):
        open_policy(sha(garbage), garbage)


def test_every_serving_failure_shares_one_base_class_for_the_fallback() -> None:
    for error in (
        ArtifactIntegrityError, ArtifactTooLargeError, PolicyLoadError,
        PolicyNotLoadedError, PolicyRunError, PolicyOutputError,
    ):
        assert issubclass(error, PolicyServingError)


def test_session_options_suit_a_single_threaded_lambda() -> None:
    opts = session_options()
    assert (opts.intra_op_num_threads, opts.inter_op_num_threads) == (1, 1)
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


def test_the_session_records_the_declared_feature_width() -> None:
    assert open_policy(sha(MLP), MLP).input_dim == 8


# ---------------------------------------------------------------- scoring


@pytest.mark.parametrize("model", [MLP, MLP_FLAT], ids=["column_output", "flat_output"])
def test_score_returns_one_float32_per_row(model: bytes) -> None:
    cache = SessionCache()
    cache.load(sha(model), model)
    x = matrix(5)
    scores = cache.score(sha(model), x)
    assert scores.shape == (5,)
    assert scores.dtype == np.float32
    reference = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    expected = reference.run(None, {"features": x})[0].reshape(5)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_scoring_an_unloaded_artifact_raises_not_loaded() -> None:
    with pytest.raises(PolicyNotLoadedError):
        SessionCache().score(sha(MLP), matrix(2))


@pytest.mark.parametrize(
    ("weights", "features"),
    [([float("nan"), 1.0], [1.0, 1.0]), ([3e38, 3e38], [10.0, 10.0])],
    ids=["nan", "overflow"],
)
def test_non_finite_scores_raise_an_output_error(
    weights: list[float], features: list[float]
) -> None:
    model = linear_policy(weights)
    session = open_policy(sha(model), model)
    with pytest.raises(PolicyOutputError, match="non-finite"):
        session.score(np.array([features], dtype=np.float32))


def test_a_wrongly_shaped_output_raises_an_output_error() -> None:
    model = two_column_policy(8)
    session = open_policy(sha(model), model)
    with pytest.raises(PolicyOutputError, match="shape"):
        session.score(matrix(3))


def test_a_matrix_the_model_cannot_take_raises_a_run_error() -> None:
    session = open_policy(sha(MLP), MLP)
    with pytest.raises(PolicyRunError):
        session.score(matrix(3, dim=7))


# ---------------------------------------------------------------- the cache


def test_the_least_recently_used_session_is_evicted_first() -> None:
    models = [random_mlp_policy(8, 4, seed=s) for s in range(3)]
    cache = SessionCache(max_sessions=2)
    cache.load(sha(models[0]), models[0])
    cache.load(sha(models[1]), models[1])
    assert cache.get(sha(models[0])) is not None  # 0 is now the most recent
    cache.load(sha(models[2]), models[2])
    assert sha(models[0]) in cache
    assert sha(models[1]) not in cache
    assert sha(models[2]) in cache


def test_the_cache_stays_within_its_byte_budget_but_keeps_the_newest_session() -> None:
    models = [random_mlp_policy(8, 4, seed=s) for s in range(3)]
    cache = SessionCache(max_cached_bytes=len(models[0]) * 2)
    for model in models:
        cache.load(sha(model), model)
    assert len(cache) == 2
    assert cache.cached_bytes == sum(len(m) for m in models[1:])
    tiny = SessionCache(max_cached_bytes=1)
    tiny.load(sha(MLP), MLP)
    assert sha(MLP) in tiny


def test_get_or_load_fetches_the_artifact_only_on_a_miss() -> None:
    cache = SessionCache()
    fetches: list[str] = []

    def fetch() -> bytes:
        fetches.append("s3")
        return MLP

    first = cache.get_or_load(sha(MLP), fetch)
    second = cache.get_or_load(sha(MLP), fetch)
    assert first is second
    assert fetches == ["s3"]


def test_a_cached_session_is_returned_without_reloading_the_bytes() -> None:
    cache = SessionCache()
    session = cache.load(sha(MLP), MLP)
    assert cache.load(sha(MLP), b"") is session


def test_evict_forgets_a_session_and_its_bytes() -> None:
    cache = SessionCache()
    cache.load(sha(MLP), MLP)
    assert cache.evict(sha(MLP))
    assert not cache.evict(sha(MLP))
    assert (len(cache), cache.cached_bytes) == (0, 0)


def test_concurrent_loads_and_scores_keep_the_cache_consistent() -> None:
    models = [random_mlp_policy(8, 4, seed=s) for s in range(4)]
    cache = SessionCache(max_sessions=2)
    errors: list[BaseException] = []
    x = matrix(4)

    def worker(offset: int) -> None:
        try:
            for step in range(20):
                model = models[(offset + step) % len(models)]
                session = cache.get_or_load(sha(model), returning(model))
                assert session.score(x).shape == (4,)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(cache) == 2
    present = [m for m in models if sha(m) in cache]
    assert cache.cached_bytes == sum(len(m) for m in present)
