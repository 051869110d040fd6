"""Tests for warnbot.regions: GB/T 2260 division codes and which region lies in which."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warnbot.regions import contains, is_code, prefix, related


def test_prefix_of_a_province_is_its_first_two_digits() -> None:
    assert prefix("440000") == "44"


def test_prefix_of_a_city_is_its_first_four_digits() -> None:
    assert prefix("440100") == "4401"


def test_prefix_of_a_county_is_the_whole_six_digit_code() -> None:
    assert prefix("449901") == "449901"


def test_prefix_of_a_township_is_its_nine_digits() -> None:
    assert prefix("449901001") == "449901001"


def test_prefix_of_a_township_written_in_twelve_digits_drops_the_village_zeros() -> None:
    assert prefix("440123001000") == "440123001"


def test_prefix_of_a_county_written_in_twelve_digits_is_the_county() -> None:
    assert prefix("449901000000") == "449901"


def test_prefix_of_a_city_written_in_nine_digits_is_the_city() -> None:
    assert prefix("440100000") == "4401"


def test_prefix_of_a_village_is_the_whole_twelve_digit_code() -> None:
    assert prefix("449901001001") == "449901001001"


def test_prefix_ignores_surrounding_whitespace() -> None:
    assert prefix(" 449901\n") == "449901"


@pytest.mark.parametrize(
    "text",
    ["", "4499", "44990", "4499011", "44990100", "4499010010", "44990a", "449901-001", "+449901"],
)
def test_prefix_refuses_text_that_is_not_a_six_nine_or_twelve_digit_code(text: str) -> None:
    with pytest.raises(ValueError, match="not an administrative division code"):
        prefix(text)


@pytest.mark.parametrize("text", ["４４９９０１", "٤٤٩٩٠١", "४४९९०१"])
def test_prefix_refuses_non_ascii_digits(text: str) -> None:
    with pytest.raises(ValueError):
        prefix(text)


@pytest.mark.parametrize("text", ["449900", "449901001", "449901001001", " 440000 "])
def test_is_code_accepts_well_formed_codes(text: str) -> None:
    assert is_code(text)


@pytest.mark.parametrize("text", ["", "4499", "abcdef", "４４９９０１", "4499011"])
def test_is_code_rejects_malformed_codes(text: str) -> None:
    assert not is_code(text)


def test_a_city_contains_its_county() -> None:
    assert contains("449900", "449901")


def test_a_county_contains_its_township_and_village() -> None:
    assert contains("449901", "449901001")
    assert contains("449901", "449901001001")


def test_a_province_contains_a_village_in_it() -> None:
    assert contains("440000", "440123001001")


def test_a_region_contains_itself_in_any_spelling() -> None:
    assert contains("449901", "449901")
    assert contains("449901", "449901000000")
    assert contains("449901000", "449901")


def test_a_county_does_not_contain_its_city() -> None:
    assert not contains("449901", "449900")


def test_a_county_does_not_contain_a_sibling_county() -> None:
    assert not contains("449901", "449902")


def test_a_township_does_not_contain_a_village_of_the_next_township() -> None:
    assert not contains("449901001", "449901002001")


def test_a_city_does_not_contain_a_county_whose_code_shares_its_leading_digits() -> None:
    # 4410 (a city) vs 441012 is inside; 4401xx is another city altogether.
    assert contains("441000", "441012")
    assert not contains("441000", "440112")


def test_contains_raises_on_a_malformed_code() -> None:
    with pytest.raises(ValueError):
        contains("4499", "449901")


def test_related_holds_both_ways_between_a_county_and_its_city() -> None:
    assert related("449901", "449900")
    assert related("449900", "449901")


def test_related_is_false_for_sibling_townships() -> None:
    assert not related("449901001", "449901002")


# --- a property over the whole hierarchy --------------------------------------------------

_segment2 = st.integers(1, 99).map(lambda n: f"{n:02d}")
_segment3 = st.integers(1, 999).map(lambda n: f"{n:03d}")


@given(_segment2, _segment2, _segment2, _segment3, _segment3)
def test_each_tier_contains_every_tier_below_it_and_none_above(
    province: str, city: str, county: str, township: str, village: str
) -> None:
    chain = [
        f"{province}0000",
        f"{province}{city}00",
        f"{province}{city}{county}",
        f"{province}{city}{county}{township}",
        f"{province}{city}{county}{township}{village}",
    ]
    for i, outer in enumerate(chain):
        for j, inner in enumerate(chain):
            assert contains(outer, inner) == (i <= j), (outer, inner)
