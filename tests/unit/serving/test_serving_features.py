from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyhub.domain.versions import FeatureSchema
from policyhub.ml.features import (
    MAX_DETAILS,
    DimensionMismatch,
    FeatureDimensionError,
    FeatureValueError,
    assemble_features,
)

SCHEMA = FeatureSchema(context_dim=3, item_dim=2)


def test_each_row_is_context_then_item_features_then_retrieval_score() -> None:
    m = assemble_features([1.0, 2.0, 3.0], [[4.0, 5.0], [6.0, 7.0]], [0.5, 0.25], SCHEMA)
    assert m.dtype == np.float32
    assert m.flags.c_contiguous
    np.testing.assert_array_equal(m, [[1, 2, 3, 4, 5, 0.5], [1, 2, 3, 6, 7, 0.25]])


def test_empty_context_and_item_features_leave_only_the_retrieval_score() -> None:
    m = assemble_features([], [[], []], [0.9, 0.1], FeatureSchema(context_dim=0, item_dim=0))
    np.testing.assert_array_equal(m, np.array([[0.9], [0.1]], dtype=np.float32))


def test_a_context_of_the_wrong_length_names_the_field_and_both_dimensions() -> None:
    with pytest.raises(FeatureDimensionError) as info:
        assemble_features([1.0, 2.0], [[4.0, 5.0]], [0.5], SCHEMA)
    err = info.value
    assert (err.status, err.code) == (422, "feature_dimension_mismatch")
    assert err.mismatches == (DimensionMismatch("body.context.features", 3, 2),)
    assert [(d.field, d.issue) for d in err.details] == [
        ("body.context.features", "expected 3 values, got 2")
    ]


def test_every_candidate_with_the_wrong_item_length_is_reported_by_index() -> None:
    items = [[1.0, 2.0], [1.0, 2.0], [1.0], [1.0, 2.0], [1.0, 2.0, 3.0]]
    with pytest.raises(FeatureDimensionError) as info:
        assemble_features([0.0] * 3, items, [0.0] * 5, SCHEMA)
    assert info.value.mismatches == (
        DimensionMismatch("body.candidates[2].features", 2, 1),
        DimensionMismatch("body.candidates[4].features", 2, 3),
    )
    assert "2 candidate(s)" in info.value.message


def test_details_are_capped_but_the_message_counts_every_bad_candidate() -> None:
    items = [[1.0]] * (MAX_DETAILS + 5)
    with pytest.raises(FeatureDimensionError) as info:
        assemble_features([0.0] * 3, items, [0.0] * len(items), SCHEMA)
    assert len(info.value.details) == MAX_DETAILS
    assert len(info.value.mismatches) == MAX_DETAILS + 5
    assert f"{MAX_DETAILS + 5} candidate(s)" in info.value.message


@pytest.mark.parametrize(
    ("context", "items", "scores", "field"),
    [
        ([float("nan"), 0.0, 0.0], [[1.0, 2.0]] * 2, [0.5, 0.5], "body.context.features[0]"),
        ([0.0] * 3, [[1.0, 2.0], [1.0, float("inf")]], [0.5, 0.5],
         "body.candidates[1].features[1]"),
        ([0.0] * 3, [[1.0, 2.0]] * 2, [float("-inf"), 0.5], "body.candidates[0].retrieval_score"),
        ([0.0] * 3, [[1e39, 2.0]] * 2, [0.5, 0.5], "body.candidates[0].features[0]"),
    ],
    ids=["nan_context", "inf_item", "inf_score", "beyond_float32"],
)
def test_non_finite_values_are_rejected_with_their_field(
    context: list[float], items: list[list[float]], scores: list[float], field: str
) -> None:
    with pytest.raises(FeatureValueError) as info:
        assemble_features(context, items, scores, SCHEMA)
    assert info.value.status == 422
    assert info.value.details[0].field == field


def test_a_non_finite_context_value_is_reported_once_not_per_candidate() -> None:
    with pytest.raises(FeatureValueError) as info:
        assemble_features([0.0, float("nan"), 0.0], [[1.0, 2.0]] * 4, [0.1] * 4, SCHEMA)
    assert [d.field for d in info.value.details] == ["body.context.features[1]"]


def test_values_that_are_not_numbers_are_a_422_not_a_crash() -> None:
    with pytest.raises(FeatureValueError) as info:
        assemble_features([0.0] * 3, [[1.0, "x"]], [0.1], SCHEMA)  # type: ignore[list-item]
    assert info.value.status == 422


def test_scores_and_feature_rows_must_pair_up() -> None:
    with pytest.raises(ValueError, match="retrieval scores"):
        assemble_features([0.0] * 3, [[1.0, 2.0]], [0.1, 0.2], SCHEMA)


finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@st.composite
def requests(draw: st.DrawFn) -> tuple[list[float], list[list[float]], list[float]]:
    cdim = draw(st.integers(0, 6))
    idim = draw(st.integers(0, 6))
    n = draw(st.integers(1, 8))
    context = draw(st.lists(finite, min_size=cdim, max_size=cdim))
    items = draw(st.lists(st.lists(finite, min_size=idim, max_size=idim), min_size=n, max_size=n))
    scores = draw(st.lists(finite, min_size=n, max_size=n))
    return context, items, scores


@settings(max_examples=100, deadline=None)
@given(requests())
def test_the_matrix_equals_the_row_wise_concatenation(
    req: tuple[list[float], list[list[float]], list[float]],
) -> None:
    context, items, scores = req
    schema = FeatureSchema(context_dim=len(context), item_dim=len(items[0]))
    expected = np.array([[*context, *item, s] for item, s in zip(items, scores, strict=True)],
                        dtype=np.float32)
    np.testing.assert_array_equal(assemble_features(context, items, scores, schema), expected)
