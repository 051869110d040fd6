"""Tests for warnbot.rules: which warnings concern which of our regions.

The warning is the demo feed's real CAP document, parsed; the rules are the demo's own.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.conftest import DATA, DEMO
from warnbot.ingest.cap import parse
from warnbot.model import Area, Colour, Level
from warnbot.model import Warning as CapWarning
from warnbot.rules import event_matches, matched_regions
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
