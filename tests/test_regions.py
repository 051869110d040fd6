"""Tests for warnbot.regions: GB/T 2260 division codes, which region lies in which, the
region tree and its file, and which regions a CAP area's polygons and circles touch.

Polygons and circles are real ones (Met Éireann, NWS, NSW RFS, USGS) against test-local
trees whose invented regions are drawn around or away from them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import Polygon

from tests.conftest import DATA, DEMO
from warnbot.errors import ConfigError
from warnbot.ingest.cap import parse
from warnbot.model import Area
from warnbot.regions import (
    area_shape,
    build_tree,
    canonical,
    cap_circle,
    cap_polygon,
    contains,
    is_code,
    load_tree,
    prefix,
    regions_touched,
    related,
)


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


# --- the region tree ----------------------------------------------------------------------


def box_latlon(lat0: float, lon0: float, lat1: float, lon1: float) -> Polygon:
    """A lat/lon box as a shapely polygon in (lon, lat), as the tree keeps outlines."""
    return shapely.box(lon0, lat0, lon1, lat1)


DEMO_TREE = load_tree(DEMO / "regions.toml")
VILLAGE = "449901001002"


def test_the_demo_tree_has_a_city_a_county_three_townships_and_five_villages() -> None:
    tiers = [r.tier for r in DEMO_TREE.regions.values()]
    assert tiers.count("city") == 1
    assert tiers.count("county") == 1
    assert tiers.count("township") == 3
    assert tiers.count("village") == 5


def test_the_demo_tree_is_the_roster_s_tree() -> None:
    roster_codes = {
        line.split(",")[3] for line in (DEMO / "roster.csv").read_text().splitlines()[1:]
    }
    assert roster_codes <= {r.code for r in DEMO_TREE.regions.values()}


def test_a_region_is_found_by_any_spelling_of_its_code() -> None:
    assert DEMO_TREE.get("449901000000").name == "示例县"
    assert DEMO_TREE.get("449901").code == "449901"
    assert "449901000000" in DEMO_TREE
    assert "449902" not in DEMO_TREE
    assert "not a code" not in DEMO_TREE


def test_a_code_the_tree_lacks_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        DEMO_TREE.get("449902")


def test_ancestors_are_listed_nearest_first() -> None:
    assert [r.code for r in DEMO_TREE.ancestors(VILLAGE)] == ["449901001", "449901", "449900"]


def test_ancestors_of_a_code_not_in_the_tree_are_the_regions_above_it() -> None:
    assert [r.code for r in DEMO_TREE.ancestors("449901001009")] == [
        "449901001",
        "449901",
        "449900",
    ]


def test_descendants_of_the_county_are_its_townships_and_villages_in_code_order() -> None:
    codes = [r.code for r in DEMO_TREE.descendants("449901")]
    assert codes == sorted(codes)
    assert len(codes) == 8
    assert all(c.startswith("449901") and c != "449901" for c in codes)


def test_children_are_one_tier_down_and_roots_have_no_parent() -> None:
    assert [r.code for r in DEMO_TREE.children("449901")] == [
        "449901001",
        "449901002",
        "449901003",
    ]
    assert [r.code for r in DEMO_TREE.roots()] == ["449900"]
    assert DEMO_TREE.get(VILLAGE).parent == "449901001"


def test_an_incident_for_a_county_covers_its_townships_and_villages_and_nothing_above() -> None:
    county = DEMO_TREE.get("449901")
    assert county.covers("449901002")
    assert county.covers("449901003001")
    assert county.covers("449901")
    assert not county.covers("449900")
    assert not DEMO_TREE.get("449901001").covers("449901002001")


def test_canonical_spells_each_region_one_way() -> None:
    assert canonical("449901000000") == "449901"
    assert canonical("449900") == "449900"
    assert canonical("440000") == "440000"
    assert canonical("449901001000") == "449901001"
    assert canonical(VILLAGE) == VILLAGE


def test_a_region_without_an_outline_takes_the_union_of_those_below() -> None:
    tree = build_tree(
        [
            ("449900", "市", None),
            ("449901", "县", None),
            ("449901001", "乡一", box_latlon(23.0, 114.0, 23.1, 114.1)),
            ("449901002", "乡二", box_latlon(23.0, 114.1, 23.1, 114.2)),
        ]
    )
    county = tree.get("449901").shape
    assert county is not None
    assert county.equals(box_latlon(23.0, 114.0, 23.1, 114.2))
    assert tree.get("449900").shape.equals(county)  # type: ignore[union-attr]


# --- the tree file -------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "regions.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_tree(path)
    return info.value.problems


def test_regions_may_be_listed_flat_and_in_yaml_with_a_geojson_outline(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "regions:\n"
        "  - {code: '449901', name: 县}\n"
        "  - code: '449901001'\n"
        "    name: 乡\n"
        "    geometry: {type: Polygon,\n"
        "               coordinates: [[[114, 23], [114.1, 23], [114.1, 23.1], [114, 23]]]}\n",
        "regions.yaml",
    )
    tree = load_tree(path)
    assert tree.get("449901001").parent == "449901"
    shape = tree.get("449901").shape
    assert shape is not None
    assert shape.bounds == (114.0, 23.0, 114.1, 23.1)


def test_several_polygons_make_one_outline(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[regions]]\ncode = "449901"\nname = "县"\n'
        "polygons = [[[23.0, 114.0], [23.0, 114.1], [23.1, 114.1]],"
        " [[24.0, 114.0], [24.0, 114.1], [24.1, 114.1]]]\n",
    )
    shape = load_tree(path).get("449901").shape
    assert shape is not None
    assert shape.geom_type == "MultiPolygon"


def test_a_bad_code_is_reported_with_its_place_in_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[regions]]\ncode = "449900"\nname = "市"\n'
        '[[regions.children]]\ncode = "4499011"\nname = "县"\n',
    )
    assert problems(path) == [
        f"{path}: regions.0.children.0.code: "
        "Value error, not a 6, 9 or 12 digit division code: '4499011'"
    ]


def test_a_child_outside_its_parent_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[regions]]\ncode = "449901"\nname = "县"\n'
        '[[regions.children]]\ncode = "449902001"\nname = "乡"\n',
    )
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: regions.0: ")
    assert "children not inside 449901: 449902001" in problem


def test_a_region_listed_twice_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[regions]]\ncode = "449901"\nname = "县"\n'
        '[[regions]]\ncode = "449901000000"\nname = "县又"\n',
    )
    assert problems(path) == [f"{path}: 449901000000: listed twice (also as 449901)"]


def test_a_self_crossing_outline_is_reported(tmp_path: Path) -> None:
    bow_tie = "[[23.0, 114.0], [23.1, 114.1], [23.0, 114.1], [23.1, 114.0]]"
    path = write(tmp_path, f'[[regions]]\ncode = "449901"\nname = "县"\npolygon = {bow_tie}\n')
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: regions.0.polygon: ")
    assert "invalid outline: Self-intersection" in problem


def test_an_outline_written_lon_lat_is_caught_by_its_range(tmp_path: Path) -> None:
    swapped = "[[114.0, 23.0], [114.1, 23.0], [114.1, 23.1]]"
    path = write(tmp_path, f'[[regions]]\ncode = "449901"\nname = "县"\npolygon = {swapped}\n')
    (problem,) = problems(path)
    assert "latitude or longitude out of range (rings are [lat, lon] pairs)" in problem


def test_a_ring_of_two_points_and_an_unknown_key_are_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[regions]]\ncode = "449901"\nname = "县"\npolygon = [[23.0, 114.0], [23.1, 114.1]]\n'
        'colour = "red"\n',
    )
    keys = sorted(p.split(": ")[1] for p in problems(path))
    assert keys == ["regions.0.colour", "regions.0.polygon"]


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path / "absent.toml")
    assert problem.endswith("cannot read: No such file or directory")


def test_a_file_that_is_not_toml_is_reported(tmp_path: Path) -> None:
    (problem,) = problems(write(tmp_path, "regions = [\n"))
    assert problem.startswith(f"{tmp_path / 'regions.toml'}: ")


# --- CAP areas against the tree ------------------------------------------------------------

CAP = DATA / "samples" / "cap"
IRELAND = parse((CAP / "ie_meteireann_lowtemp_polygons.xml").read_bytes()).areas[0]
ACADIA = parse((CAP / "us_nws_hurricane_update_multipolygon.xml").read_bytes()).areas[0]
YERONG = parse((CAP / "au_nsw_rfs_fire_cap_prefix.xml").read_bytes(), language="en").areas[0]
USULUTAN = parse((CAP / "us_usgs_earthquake_iso8859-1.xml").read_bytes()).areas[0]

# Test-local trees: invented codes with outlines drawn around and away from real warnings.
# Met Éireann's six polygons cover the Republic of Ireland, not Northern Ireland.
IRISH_TREE = build_tree(
    [
        ("449901", "县", box_latlon(53.0, -10.0, 55.0, -5.5)),
        ("449901001", "Athlone", box_latlon(53.38, -8.0, 53.46, -7.88)),
        ("449901002", "Dublin", box_latlon(53.30, -6.35, 53.40, -6.20)),
        ("449901003", "Belfast", box_latlon(54.55, -6.00, 54.65, -5.85)),
    ]
)


def test_the_real_irish_polygons_touch_the_townships_inside_them_only() -> None:
    assert regions_touched(IRELAND, IRISH_TREE) == ["449901001", "449901002"]


def test_an_area_over_every_township_of_a_county_they_tile_names_the_county() -> None:
    tiled = build_tree(
        [
            ("449901", "县", box_latlon(53.0, -8.5, 54.0, -6.0)),
            ("449901001", "west", box_latlon(53.0, -8.5, 54.0, -7.25)),
            ("449901002", "east", box_latlon(53.0, -7.25, 54.0, -6.0)),
        ]
    )
    assert regions_touched(IRELAND, tiled) == ["449901"]


def test_an_area_over_the_county_but_no_drawn_township_names_the_county() -> None:
    county = box_latlon(53.0, -10.0, 55.0, -5.5)
    no_townships = build_tree([("449901", "县", county)])
    belfast_only = build_tree(
        [("449901", "县", county), ("449901003", "Belfast", box_latlon(54.55, -6.0, 54.65, -5.85))]
    )
    assert regions_touched(IRELAND, no_townships) == ["449901"]
    assert regions_touched(IRELAND, belfast_only) == ["449901"]


def test_the_real_nws_multipolygon_touches_the_village_inside_acadia_parish_only() -> None:
    tree = build_tree(
        [
            ("449901001", "乡", box_latlon(29.5, -93.0, 31.0, -91.5)),
            ("449901001001", "Crowley", box_latlon(30.19, -92.40, 30.23, -92.34)),
            ("449901001002", "Lafayette", box_latlon(30.19, -92.05, 30.25, -91.98)),
        ]
    )
    assert len(ACADIA.polygons) == 2
    polygons_only = replace(ACADIA, geocodes=())  # its SAME geocode 022001 looks like a code
    assert regions_touched(polygons_only, tree) == ["449901001001"]


def test_the_real_rfs_circle_of_25_km_touches_a_village_10_km_away_not_one_60_km_away() -> None:
    lat, lon = -35.3888, 147.0598
    km = 1 / 111.0  # degrees of latitude per km, near enough here
    tree = build_tree(
        [
            ("449901001", "乡", box_latlon(lat - 1, lon - 1, lat + 1, lon + 1)),
            ("449901001001", "near", box_latlon(lat + 9 * km, lon, lat + 11 * km, lon + 0.01)),
            ("449901001002", "far", box_latlon(lat - 61 * km, lon, lat - 59 * km, lon + 0.01)),
        ]
    )
    assert YERONG.circles == ("-35.3888,147.0598 25.0",)
    assert regions_touched(YERONG, tree) == ["449901001001"]


def test_a_circle_of_radius_zero_is_its_centre() -> None:
    tree = build_tree([("449901", "县", box_latlon(12.7, -88.8, 12.8, -88.7))])
    assert USULUTAN.circles == ("12.747,-88.783 0.0",)
    assert regions_touched(USULUTAN, tree) == ["449901"]


def test_a_circle_is_round_in_kilometres_not_in_degrees() -> None:
    shape = cap_circle("60.0,10.0 100")  # at 60°N a degree of longitude is half as long
    assert shape is not None
    lon0, lat0, lon1, lat1 = shape.bounds
    assert lat1 - lat0 == pytest.approx(2 * 100 / 110.574, rel=1e-3)
    assert lon1 - lon0 == pytest.approx(2 * 100 / 55.66, rel=1e-3)


def test_an_area_that_only_shares_a_border_does_not_touch() -> None:
    area = Area("邻县", polygons=("23.0,114.45 23.0,114.6 23.3,114.6 23.3,114.45 23.0,114.45",))
    assert regions_touched(area, DEMO_TREE) == ["449900"]  # the city's outline, not the county's


def test_an_area_over_part_of_one_township_names_its_villages_touched() -> None:
    area = Area("一镇南部", polygons=("23.01,114.01 23.01,114.05 23.05,114.05 23.01,114.01",))
    assert regions_touched(area, DEMO_TREE) == ["449901001001"]


def test_an_area_over_two_villages_of_two_townships_names_both() -> None:
    area = Area("跨镇", circles=("23.1,114.15 3",))
    assert regions_touched(area, DEMO_TREE) == ["449901001001", "449901002001"]


def test_geocodes_count_by_code_with_or_without_a_tree() -> None:
    area = Area("县", geocodes=(("行政区划代码", "449901"), ("UGC", "NCZ001"), ("x", " 449902 ")))
    assert regions_touched(area, None) == ["449901", "449902"]
    assert regions_touched(area, DEMO_TREE) == ["449901", "449902"]


def test_unreadable_polygons_and_circles_are_skipped() -> None:
    area = Area(
        "坏",
        polygons=("23.0,114.0 oops", "91.0,114.0 23.1,114.1 23.2,114.0"),
        circles=("23.0,114.0", "23.0,114.0 -5", "x,y 3"),
    )
    assert area_shape(area) is None
    assert regions_touched(area, DEMO_TREE) == []


def test_a_self_crossing_cap_polygon_is_repaired_not_dropped() -> None:
    shape = cap_polygon("23.0,114.0 23.1,114.1 23.0,114.1 23.1,114.0 23.0,114.0")
    assert shape is not None
    assert shape.is_valid
    assert shape.area > 0


_lat = st.floats(22.9, 23.4)
_lon = st.floats(113.9, 114.55)


@given(_lat, _lon, _lat, _lon)
def test_no_touched_region_lies_inside_another_touched_one(
    lat0: float, lon0: float, lat1: float, lon1: float
) -> None:
    ring = f"{lat0},{lon0} {lat0},{lon1} {lat1},{lon1} {lat1},{lon0} {lat0},{lon0}"
    codes = regions_touched(Area("随机", polygons=(ring,)), DEMO_TREE)
    for a in codes:
        for b in codes:
            assert a == b or not contains(a, b), (a, b)
