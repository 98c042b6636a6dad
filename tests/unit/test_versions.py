from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policyhub.domain.errors import PolicyHubError
from policyhub.domain.versions import FeatureSchema, SemVer, next_version

numbers = st.integers(min_value=0, max_value=999_999)
versions = st.builds(SemVer, numbers, numbers, numbers)
schemas = st.builds(FeatureSchema, context_dim=st.integers(0, 64), item_dim=st.integers(0, 64))


def test_first_version_is_v1_0_0() -> None:
    assert str(next_version(None, None, FeatureSchema(context_dim=2, item_dim=3))) == "v1.0.0"


def test_same_schema_bumps_patch_and_new_schema_bumps_minor() -> None:
    a, b = FeatureSchema(context_dim=2, item_dim=3), FeatureSchema(context_dim=4, item_dim=3)
    assert str(next_version(SemVer(1, 2, 4), a, a)) == "v1.2.5"
    assert str(next_version(SemVer(1, 2, 4), a, b)) == "v1.3.0"


@given(versions, schemas, schemas)
def test_next_version_is_always_greater(v: SemVer, old: FeatureSchema, new: FeatureSchema) -> None:
    assert next_version(v, old, new) > v


@given(versions, versions)
def test_sort_key_orders_like_versions(a: SemVer, b: SemVer) -> None:
    assert (a.sort_key < b.sort_key) == (a < b)


@given(versions)
def test_parse_round_trips(v: SemVer) -> None:
    assert SemVer.parse(str(v)) == v


@pytest.mark.parametrize("text", ["1.2.3", "v1.2", "v01.2.3", "v1.2.3-rc1", "", "v1.2.3 "])
def test_parse_rejects_what_is_not_a_version(text: str) -> None:
    with pytest.raises(PolicyHubError) as err:
        SemVer.parse(text)
    assert err.value.status == 422
