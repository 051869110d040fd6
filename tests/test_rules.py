"""Tests for warnbot.rules: which warnings concern which of our regions, and how
threshold rules measure readings.

The warning is the demo feed's real CAP document, parsed; the rules are the demo's own,
signal rules checked against the catalogue, and threshold rules on invented gauges.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.conftest import DATA, DEMO, T0
from warnbot.errors import ConfigError
from warnbot.ingest.cap import parse
from warnbot.model import Area, Colour, Level, Observation
from warnbot.model import Warning as CapWarning
from warnbot.regions import load_tree
from warnbot.rules import (
    Reading,
    ThresholdRule,
    cap_rules,
    event_matches,
    longest_window_s,
    matched_regions,
    outermost,
    threshold_rules,
)
from warnbot.settings import CapRule, load_settings

RULES = {r.name: r for r in load_settings(DEMO / "warnbot.toml").rules}
ORANGE_RULE = RULES["暴雨橙色 → Ⅱ级"]
RED_RULE = RULES["暴雨红色 → Ⅰ级"]
ORANGE = parse((DEMO / "feed" / "rainstorm_orange.xml").read_bytes())
TAIWAN_ALERT = parse((DATA / "samples" / "cap" / "tw_cwa_heavyrain_1_alert.xml").read_bytes())


def rule(**fields: object) -> CapRule:
    base: dict[str, object] = {
        "name": "test",
        "hazard": "暴雨",
        "events": ["暴雨"],
        "region_codes": ["449900"],
        "level": "Ⅱ",
    }
    return CapRule.model_validate(base | fields)


def in_areas(w: CapWarning, *codes: tuple[str, str]) -> CapWarning:
    return replace(w, areas=(Area("测试区域", geocodes=codes),))


def test_the_demo_warning_is_an_orange_rainstorm_for_the_demo_county() -> None:
    assert ORANGE.colour is Colour.ORANGE
    assert ORANGE.geocode_values() == {"449901"}
    assert ORANGE_RULE.level is Level.II


def test_the_orange_rule_matches_the_orange_warning_in_the_county_inside_its_city() -> None:
    assert matched_regions(ORANGE_RULE, ORANGE) == ["449901"]


def test_the_red_rule_does_not_match_an_orange_warning() -> None:
    assert matched_regions(RED_RULE, ORANGE) == []


def test_a_rule_without_colours_matches_any_colour() -> None:
    assert matched_regions(rule(colours=[]), replace(ORANGE, colour=None)) == ["449901"]


def test_a_rule_with_colours_does_not_match_a_warning_without_a_colour() -> None:
    assert matched_regions(ORANGE_RULE, replace(ORANGE, colour=None)) == []


def test_an_event_matches_as_a_substring_of_the_cap_event() -> None:
    assert event_matches(rule(events=["暴雨"]), replace(ORANGE, headline=""))


def test_an_event_matches_as_a_substring_of_the_headline() -> None:
    w = replace(ORANGE, event="Met", headline="示例县气象台发布暴雨橙色预警信号")
    assert event_matches(rule(events=["暴雨"]), w)


def test_an_event_matches_english_text_regardless_of_case() -> None:
    w = replace(ORANGE, event="Heavy RAINSTORM", headline="")
    assert event_matches(ORANGE_RULE, w)


def test_a_rule_for_another_hazard_does_not_match() -> None:
    assert matched_regions(rule(events=["台风", "typhoon"]), ORANGE) == []


def test_a_warning_outside_the_rules_regions_matches_nothing() -> None:
    assert matched_regions(ORANGE_RULE, in_areas(ORANGE, ("行政区划代码", "449801"))) == []


def test_a_rule_for_one_township_does_not_match_a_warning_for_the_whole_county() -> None:
    assert matched_regions(rule(region_codes=["449901001"]), ORANGE) == []


def test_only_the_warnings_codes_inside_the_rules_regions_are_returned_sorted() -> None:
    w = in_areas(
        ORANGE,
        ("行政区划代码", "449902"),
        ("行政区划代码", "449801"),
        ("行政区划代码", "449901001"),
    )
    assert matched_regions(ORANGE_RULE, w) == ["449901001", "449902"]


def test_a_rule_with_several_regions_matches_in_each() -> None:
    w = in_areas(ORANGE, ("行政区划代码", "449801"), ("行政区划代码", "449901"))
    assert matched_regions(rule(region_codes=["449800", "449900"]), w) == ["449801", "449901"]


def test_geocodes_that_are_not_division_codes_are_ignored() -> None:
    w = in_areas(
        ORANGE,
        ("Taiwan_Geocode_103", "1001502"),
        ("UGC", "NCZ001"),
        ("行政区划代码", "449901"),
    )
    assert matched_regions(ORANGE_RULE, w) == ["449901"]


def test_the_real_taiwan_warning_matches_no_division_code_rule() -> None:
    # CWA's Taiwan_Geocode_103 values are 7 digits: not GB/T 2260 codes.
    taiwan_rule = rule(events=["降雨", "大雨"], region_codes=["710000"], colours=[])
    assert event_matches(taiwan_rule, TAIWAN_ALERT)
    assert matched_regions(taiwan_rule, TAIWAN_ALERT) == []


def test_severities_filter_on_the_cap_severity() -> None:
    assert ORANGE.severity == "Severe"
    assert matched_regions(rule(severities=["Severe", "Extreme"]), ORANGE) == ["449901"]
    assert matched_regions(rule(severities=["Extreme"]), ORANGE) == []


def test_a_warning_without_areas_matches_nothing() -> None:
    assert matched_regions(ORANGE_RULE, replace(ORANGE, areas=())) == []


def test_rules_read_from_a_toml_file_in_the_config_directory(tmp_path: Path) -> None:
    config = tmp_path / "warnbot.toml"
    config.write_text(
        '[[rules]]\nname = "暴雨黄色 → Ⅲ级"\nhazard = "暴雨"\nevents = ["暴雨"]\n'
        'colours = ["yellow"]\nregion_codes = ["449901"]\nlevel = "3"\n',
        encoding="utf-8",
    )
    (yellow_rule,) = load_settings(config).rules
    assert yellow_rule.level is Level.III
    assert matched_regions(yellow_rule, replace(ORANGE, colour=Colour.YELLOW)) == ["449901"]
    assert matched_regions(yellow_rule, ORANGE) == []


# --- signal rules ----------------------------------------------------------------------------


def signal_rule(**fields: object) -> CapRule:
    base: dict[str, object] = {"name": "信号", "signal": "暴雨 橙色", "region_codes": ["449900"]}
    return CapRule.model_validate(base | {"level": "Ⅱ"} | fields)


def test_a_signal_rule_takes_its_hazard_and_colour_from_the_signal() -> None:
    r = signal_rule()
    assert (r.hazard, r.signal, r.colours, r.events) == ("暴雨", "暴雨", [Colour.ORANGE], [])
    assert matched_regions(r, ORANGE) == ["449901"]
    assert matched_regions(r, replace(ORANGE, colour=Colour.RED)) == []


def test_a_signal_without_a_colour_takes_the_colours_list() -> None:
    r = signal_rule(signal="rainstorm", colours=["orange", "red"])
    assert (r.signal, r.colours) == ("暴雨", [Colour.ORANGE, Colour.RED])
    assert matched_regions(r, replace(ORANGE, colour=Colour.RED)) == ["449901"]


def test_a_signal_rule_matches_an_english_event_of_the_same_hazard() -> None:
    english = replace(ORANGE, event="Heavy Rain Warning", headline="Orange warning")
    assert matched_regions(signal_rule(), english) == ["449901"]


def test_a_signal_rule_does_not_match_a_lookalike_that_an_events_rule_would() -> None:
    thunder_gale = replace(ORANGE, event="雷雨大风", headline="雷雨大风橙色预警信号")
    assert not event_matches(signal_rule(signal="大风 橙色"), thunder_gale)
    assert event_matches(rule(events=["大风"]), thunder_gale)


def test_a_rule_may_name_its_incident_hazard_apart_from_the_signal() -> None:
    assert signal_rule(hazard="强降雨").hazard == "强降雨"


def rule_problems(tmp_path: Path, body: str) -> list[str]:
    config = tmp_path / "warnbot.toml"
    config.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    return info.value.problems


RULE_HEAD = '[[rules]]\nname = "{name}"\nregion_codes = ["449900"]\nlevel = "Ⅱ"\n'


def test_a_colour_the_signal_lacks_is_a_load_error_naming_the_rule(tmp_path: Path) -> None:
    body = RULE_HEAD.format(name="霜冻红色") + 'signal = "霜冻 红色"\n'
    path = tmp_path / "warnbot.toml"
    assert rule_problems(tmp_path, body) == [
        f"{path}: rules.0.signal: rule '霜冻红色': "
        "霜冻 has no 红色 signal (its colours: 蓝色、黄色、橙色)"
    ]


def test_a_colours_list_the_signal_lacks_is_reported_under_colours(tmp_path: Path) -> None:
    body = RULE_HEAD.format(name="干旱") + 'signal = "干旱"\ncolours = ["yellow"]\n'
    (problem,) = rule_problems(tmp_path, body)
    assert ": rules.0.colours: rule '干旱': 干旱 has no 黄色 signal" in problem


def test_a_signal_and_colours_that_disagree_are_reported(tmp_path: Path) -> None:
    body = RULE_HEAD.format(name="x") + 'signal = "暴雨 红色"\ncolours = ["orange"]\n'
    (problem,) = rule_problems(tmp_path, body)
    assert "rules.0.signal: rule 'x': '暴雨 红色' says 红色 but colours says 橙色" in problem


def test_an_unknown_signal_hazard_is_reported(tmp_path: Path) -> None:
    (problem,) = rule_problems(tmp_path, RULE_HEAD.format(name="x") + 'signal = "洪水"\n')
    assert "rules.0.signal: rule 'x': '洪水' is not a hazard of the signal catalogue" in problem


def test_a_cap_rule_without_events_or_signal_is_reported(tmp_path: Path) -> None:
    (problem,) = rule_problems(tmp_path, RULE_HEAD.format(name="空") + 'hazard = "暴雨"\n')
    assert problem.endswith("rules.0.events: rule '空': a CAP rule needs events, a signal, or both")


def test_an_events_rule_without_a_hazard_is_reported(tmp_path: Path) -> None:
    (problem,) = rule_problems(tmp_path, RULE_HEAD.format(name="x") + 'events = ["暴雨"]\n')
    assert "rules.0.hazard: rule 'x': hazard is required unless a signal names it" in problem


def test_a_misspelt_key_is_reported_not_ignored(tmp_path: Path) -> None:
    body = RULE_HEAD.format(name="x") + 'signal = "暴雨"\ncolour = ["red"]\n'
    (problem,) = rule_problems(tmp_path, body)
    assert "rules.0.colour: rule 'x': Extra inputs are not permitted" in problem


# --- CAP qualifiers and areas -----------------------------------------------------------------


def test_certainty_and_urgency_filter_like_severity() -> None:
    w = replace(ORANGE, certainty="Likely", urgency="Expected")
    assert matched_regions(rule(certainties=["likely", "Observed"]), w) == ["449901"]
    assert matched_regions(rule(certainties=["Observed"]), w) == []
    assert matched_regions(rule(urgencies=["Expected"]), w) == ["449901"]
    assert matched_regions(rule(urgencies=["Immediate"]), w) == []


def test_a_region_inside_another_matched_region_is_dropped() -> None:
    w = in_areas(ORANGE, ("行政区划代码", "449901001"), ("行政区划代码", "449901"))
    assert matched_regions(ORANGE_RULE, w) == ["449901"]


def test_two_spellings_of_one_region_match_once() -> None:
    w = in_areas(ORANGE, ("CPEAS Geographic Code", "449901000000"), ("行政区划代码", "449901"))
    assert matched_regions(ORANGE_RULE, w) == ["449901"]


def test_outermost_keeps_sibling_regions() -> None:
    assert outermost(["449901002", "449901001001", "449901001"]) == ["449901001", "449901002"]


def test_a_polygon_matches_the_regions_of_the_tree_it_overlaps() -> None:
    tree = load_tree(DEMO / "regions.toml")
    area = Area("二镇北部", polygons=("23.2,114.2 23.2,114.25 23.25,114.25 23.2,114.2",))
    w = replace(ORANGE, areas=(area,))
    assert matched_regions(ORANGE_RULE, w) == []  # without the tree only geocodes count
    assert matched_regions(ORANGE_RULE, w, tree) == ["449901002002"]
    assert matched_regions(rule(region_codes=["449901001"]), w, tree) == []


# --- threshold rules: loading --------------------------------------------------------------

GAUGE: dict[str, object] = {
    "name": "河口站超警戒 → Ⅲ级",
    "hazard": "洪水",
    "quantity": "water_level",
    "stations": ["hydro:001"],
    "region_code": "449901001",
    "above": 12.5,
    "hysteresis": 0.2,
    "hold_s": 3600,
    "level": "Ⅲ",
}


def threshold(**fields: object) -> ThresholdRule:
    return ThresholdRule.model_validate(GAUGE | fields)


def test_a_rule_with_a_quantity_is_a_threshold_rule(tmp_path: Path) -> None:
    config = tmp_path / "warnbot.toml"
    config.write_text(
        '[[rules]]\nname = "暴雨"\nsignal = "暴雨 橙色"\nregion_codes = ["449900"]\nlevel = "Ⅱ"\n'
        '[[rules]]\nname = "河口站"\nhazard = "洪水"\nquantity = "water_level"\n'
        'region_code = "449901001"\nabove = 12.5\nlevel = "Ⅲ"\n'
        '[[rules]]\nkind = "threshold"\nname = "1小时雨量"\nhazard = "暴雨"\n'
        'quantity = "rainfall"\n'
        'region_code = "449901"\nmeasure = "sum"\nwindow_s = 3600\nabove = 50\nhold_s = 1800\n'
        'level = "Ⅱ"\n',
        encoding="utf-8",
    )
    rules = load_settings(config).rules
    assert [type(r) for r in rules] == [CapRule, ThresholdRule, ThresholdRule]
    assert [r.name for r in cap_rules(rules)] == ["暴雨"]
    assert [r.name for r in threshold_rules(rules)] == ["河口站", "1小时雨量"]
    assert longest_window_s(rules) == 3600 + 1800


def test_threshold_errors_name_the_rule_and_the_key(tmp_path: Path) -> None:
    body = (
        '[[rules]]\nname = "ok"\nhazard = "洪水"\nquantity = "stage"\nregion_code = "449901"\n'
        'above = 1\nlevel = "Ⅲ"\n'
        '[[rules]]\nname = "河口站"\nhazard = "洪水"\nquantity = "stage"\nregion_code = "449901"\n'
        'above = "high"\nhysteresis = -1\nlevel = "Ⅲ"\n'
    )
    path = tmp_path / "warnbot.toml"
    assert sorted(rule_problems(tmp_path, body)) == [
        f"{path}: rules.1.above: rule '河口站': Input should be a valid number, "
        "unable to parse string as a number",
        f"{path}: rules.1.hysteresis: rule '河口站': Input should be greater than or equal to 0",
    ]


@pytest.mark.parametrize(
    ("fields", "key", "message"),
    [
        ({"above": None}, "above", "give exactly one of above and below"),
        ({"below": 3.0}, "above", "give exactly one of above and below"),
        ({"measure": "sum"}, "window_s", "window_s goes with measure 'sum' or 'rise'"),
        ({"window_s": 3600}, "window_s", "window_s goes with measure 'sum' or 'rise'"),
        (
            {"measure": "rise", "window_s": 3600, "above": None, "below": 1.0},
            "below",
            "a rise is compared with above, not below",
        ),
        ({"region_code": "4499"}, "region_code", "not a 6, 9 or 12 digit division code"),
        ({"measure": "mean"}, "measure", "Input should be 'value', 'sum' or 'rise'"),
    ],
)
def test_a_threshold_rule_is_checked_at_load(
    fields: dict[str, object], key: str, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        threshold(**fields)
    (error,) = info.value.errors()
    assert error["loc"] == (key,)
    assert error["msg"].startswith("rule '河口站超警戒 → Ⅲ级': ")
    assert message in error["msg"]


def test_an_unknown_kind_is_reported_with_the_rule_name(tmp_path: Path) -> None:
    body = RULE_HEAD.format(name="x") + 'kind = "gauge"\nsignal = "暴雨"\n'
    (problem,) = rule_problems(tmp_path, body)
    assert "rules.0.kind: rule 'x': Input should be 'cap'" in problem


def test_a_rule_that_is_not_a_table_is_reported(tmp_path: Path) -> None:
    (problem,) = rule_problems(tmp_path, 'rules = ["暴雨"]\n')
    assert ": rules.0: " in problem
    assert "a rule is a table of keys" in problem


# --- threshold rules: measuring ------------------------------------------------------------


def reading(value: float, minutes: float, station: str = "hydro:001", **kw: Any) -> Observation:
    fields: dict[str, Any] = {"quantity": "water_level", "unit": "m", "region_code": ""} | kw
    return Observation(station=station, value=value, time=T0 + timedelta(minutes=minutes), **fields)


def values(measured: dict[str, list[Reading]]) -> dict[str, list[tuple[float, float]]]:
    return {
        s: [((r.time - T0).total_seconds() / 60, round(r.value, 6)) for r in rs]
        for s, rs in measured.items()
    }


def test_the_value_measure_is_each_reading_of_the_rules_stations_up_to_now() -> None:
    obs = [
        reading(12.0, 0),
        reading(12.6, 10),
        reading(13.0, 20),  # after now
        reading(9.0, 5, station="hydro:002"),
        reading(12.9, 5, quantity="discharge"),
    ]
    got = threshold().measured(obs, T0 + timedelta(minutes=15))
    assert values(got) == {"hydro:001": [(0, 12.0), (10, 12.6)]}


def test_a_reading_seen_twice_counts_once() -> None:
    rain = threshold(measure="sum", window_s=3600, quantity="rainfall", stations=[])
    obs = [reading(5.0, 0, quantity="rainfall", region_code="449901001001")] * 2
    assert values(rain.measured(obs, T0)) == {"hydro:001": [(0, 5.0)]}


def test_without_stations_every_station_in_the_region_counts() -> None:
    r = threshold(stations=[])
    obs = [
        reading(1.0, 0, station="a", region_code="449901001002"),
        reading(2.0, 0, station="b", region_code="449901002001"),
        reading(3.0, 0, station="c"),
    ]
    assert list(r.measured(obs, T0)) == ["a"]


def test_readings_in_another_unit_are_ignored_when_the_rule_names_its_unit() -> None:
    obs = [reading(41.0, 0, unit="ft"), reading(12.6, 1)]
    assert values(threshold(unit="m").measured(obs, T0 + timedelta(minutes=1))) == {
        "hydro:001": [(1, 12.6)]
    }


def test_a_sum_covers_the_window_before_each_reading() -> None:
    rain = threshold(quantity="rainfall", measure="sum", window_s=3600)
    obs = [reading(v, m, quantity="rainfall") for m, v in [(0, 10), (30, 20), (60, 30), (90, 5)]]
    got = values(rain.measured(obs, T0 + timedelta(hours=2)))
    # at 60 min the reading of 0 min is a full window old: its interval is outside
    assert got == {"hydro:001": [(0, 10), (30, 30), (60, 50), (90, 35)]}


def test_a_rise_is_per_hour_since_the_reading_a_window_back() -> None:
    rise = threshold(measure="rise", window_s=3600, above=0.5)
    obs = [reading(v, m) for m, v in [(0, 10.0), (30, 10.2), (60, 10.8), (120, 11.0)]]
    got = values(rise.measured(obs, T0 + timedelta(hours=2)))
    assert got == {"hydro:001": [(30, 0.4), (60, 0.8), (120, 0.2)]}


def test_above_trips_at_the_threshold_and_holds_down_to_threshold_minus_hysteresis() -> None:
    r = threshold()
    assert (r.threshold, r.clears_at) == (12.5, 12.3)
    assert r.trips(12.5) and not r.trips(12.49)
    assert r.holds(12.3) and not r.holds(12.29)


def test_below_trips_at_the_threshold_and_holds_up_to_threshold_plus_hysteresis() -> None:
    r = threshold(above=None, below=2.0, quantity="reservoir_level")
    assert (r.threshold, r.clears_at) == (2.0, 2.2)
    assert r.trips(2.0) and not r.trips(2.01)
    assert r.holds(2.2) and not r.holds(2.21)


def test_the_worst_reading_is_furthest_past_the_threshold() -> None:
    rs = [Reading("a", "a", T0, 1.0), Reading("b", "b", T0, 3.0)]
    assert threshold().worst(rs).station == "b"
    assert threshold(above=None, below=2.0).worst(rs).station == "a"
