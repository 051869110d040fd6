"""Tests for warnbot.signals: the national warning-signal catalogue and recognising hazards.

Events and headlines are taken from real CAP documents where there is one: the demo feed,
the CMA Penglai high-temperature update (English and Chinese), Met Éireann, NWS, ECCC.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import DATA, DEMO
from warnbot import signals
from warnbot.ingest.cap import parse
from warnbot.model import Colour
from warnbot.signals import Signal, identify

BLUE, YELLOW, ORANGE, RED = Colour.BLUE, Colour.YELLOW, Colour.ORANGE, Colour.RED
CAP = DATA / "samples" / "cap"


def sample(name: str, language: str = "zh") -> tuple[str, str]:
    w = parse((CAP / name).read_bytes(), language=language)
    return w.event, w.headline


# --- the catalogue ------------------------------------------------------------------------

NATIONAL = {
    "台风": (BLUE, YELLOW, ORANGE, RED),
    "暴雨": (BLUE, YELLOW, ORANGE, RED),
    "暴雪": (BLUE, YELLOW, ORANGE, RED),
    "寒潮": (BLUE, YELLOW, ORANGE, RED),
    "大风": (BLUE, YELLOW, ORANGE, RED),
    "沙尘暴": (YELLOW, ORANGE, RED),
    "高温": (YELLOW, ORANGE, RED),
    "干旱": (ORANGE, RED),
    "雷电": (YELLOW, ORANGE, RED),
    "冰雹": (ORANGE, RED),
    "霜冻": (BLUE, YELLOW, ORANGE),
    "大雾": (YELLOW, ORANGE, RED),
    "霾": (YELLOW, ORANGE, RED),
    "道路结冰": (YELLOW, ORANGE, RED),
}


def test_the_catalogue_has_the_fourteen_national_signals_of_order_16() -> None:
    national = {h.name for h in signals.catalogue().values() if h.national}
    assert national == set(NATIONAL)


@pytest.mark.parametrize(("hazard", "expected"), sorted(NATIONAL.items()))
def test_each_national_signal_has_the_colours_the_annex_gives_it(
    hazard: str, expected: tuple[Colour, ...]
) -> None:
    assert signals.colours(hazard) == expected


def test_forest_fire_danger_is_a_local_signal_of_three_colours() -> None:
    hazard = signals.lookup("森林火险")
    assert not hazard.national
    assert hazard.colours == (YELLOW, ORANGE, RED)


def test_every_hazard_has_an_english_name() -> None:
    assert all(h.en for h in signals.catalogue().values())


def test_the_catalogue_is_read_once() -> None:
    assert signals.catalogue() is signals.catalogue()


@pytest.mark.parametrize("name", ["暴雨", "rainstorm", "Rain Storm", "heavy rain", " 暴雨 "])
def test_a_hazard_is_looked_up_by_any_of_its_names(name: str) -> None:
    assert signals.lookup(name).name == "暴雨"


def test_an_unknown_hazard_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        signals.colours("洪水")


# --- a rule's signal ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["暴雨 橙色", "暴雨橙色", "暴雨橙色预警信号", "暴雨 橙", "rainstorm orange", "暴雨 Orange"],
)
def test_a_signal_with_a_colour_is_read_in_either_language(text: str) -> None:
    hazard, colour = signals.parse(text)
    assert (hazard.name, colour) == ("暴雨", ORANGE)


def test_a_signal_without_a_colour_names_the_hazard_only() -> None:
    hazard, colour = signals.parse("寒潮")
    assert (hazard.name, colour) == ("寒潮", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("霜冻 红色", "霜冻 has no 红色 signal (its colours: 蓝色、黄色、橙色)"),
        ("干旱 黄色", "干旱 has no 黄色 signal"),
        ("冰雹 蓝色", "冰雹 has no 蓝色 signal"),
        ("高温 blue", "高温 has no 蓝色 signal"),
    ],
)
def test_a_colour_the_hazard_does_not_have_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        signals.parse(text)


def test_a_signal_for_a_hazard_outside_the_catalogue_is_refused() -> None:
    with pytest.raises(ValueError, match="'洪水' is not a hazard of the signal catalogue"):
        signals.parse("洪水 橙色")


# --- recognising a CAP event -------------------------------------------------------------


def test_the_demo_warning_is_an_orange_rainstorm_signal() -> None:
    w = parse((DEMO / "feed" / "rainstorm_orange.xml").read_bytes())
    assert identify(w.event, w.headline) == Signal("暴雨", ORANGE)


def test_a_chinese_signal_name_with_its_colour_is_recognised() -> None:
    assert identify("暴雨橙色预警信号") == Signal("暴雨", ORANGE)


def test_an_english_event_is_recognised_without_a_colour() -> None:
    assert identify("Heavy Rain Warning") == Signal("暴雨", None)


def test_the_real_cma_english_high_temperature_update_is_a_red_heat_signal() -> None:
    event, headline = sample("cn_cma_penglai_heat_update_en_zh.xml", language="en")
    assert event == "high temperature"
    assert identify(event, headline) == Signal("高温", RED)


def test_the_real_cma_chinese_high_temperature_update_is_a_red_heat_signal() -> None:
    event, headline = sample("cn_cma_penglai_heat_update_en_zh.xml")
    assert (event, headline) == ("高温", "蓬莱区气象台变更发布高温红色预警信号[Ⅰ级/特别严重]")
    assert identify(event, headline) == Signal("高温", RED)


def test_an_upgrade_headline_counts_the_colour_it_ends_with() -> None:
    headline = "某县气象台将暴雨橙色预警信号升级为暴雨红色预警信号"
    assert identify("", headline) == Signal("暴雨", RED)


def test_a_headline_is_used_when_the_event_names_no_hazard() -> None:
    assert identify("Met", "示例县气象台发布大雾黄色预警信号") == Signal("大雾", YELLOW)


def test_the_event_wins_over_the_headline() -> None:
    assert identify("寒潮", "寒潮 with 大风") == Signal("寒潮", None)


@pytest.mark.parametrize(
    ("event", "hazard"),
    [
        ("Typhoon", "台风"),
        ("Tropical Cyclone Warning", "台风"),
        ("颱風警報", "台风"),
        ("Sandstorm", "沙尘暴"),
        ("Sand-storm", "沙尘暴"),
        ("Dust Storm Warning", "沙尘暴"),
        ("Heat Wave", "高温"),
        ("Road Icing", "道路结冰"),
        ("Dense Fog Advisory", "大雾"),
        ("灰霾黄色预警信号", "霾"),
        ("森林火险橙色预警信号", "森林火险"),
        ("Gale Warning", "大风"),
        ("Hail", "冰雹"),
        ("Frost", "霜冻"),
    ],
)
def test_common_names_in_either_language_are_recognised(event: str, hazard: str) -> None:
    found = identify(event)
    assert found is not None
    assert found.hazard == hazard


@pytest.mark.parametrize("event", ["雷雨大风黄色预警信号", "海上大风", "Thunderstorm Gale"])
def test_a_lookalike_signal_is_not_the_hazard_its_name_contains(event: str) -> None:
    assert identify(event) is None


@pytest.mark.parametrize(
    "event",
    ["Freezing Rain Advisory", "Hailey Street closure", "Frosty morning", "Galena flood", "大雨"],
)
def test_english_names_match_whole_words_only_and_大雨_is_not_暴雨(event: str) -> None:
    assert identify(event) is None


@pytest.mark.parametrize(
    "name",
    [
        "ie_meteireann_lowtemp_polygons.xml",  # "Yellow Low Temperature/Ice": no national signal
        "ca_eccc_update_en_fr.xml",  # "thunderstorm": 雷电 is lightning, not thunderstorm
        "us_usgs_earthquake_iso8859-1.xml",
        "tw_cwa_heavyrain_1_alert.xml",  # 大雨特報: Taiwan's own product
    ],
)
def test_real_warnings_that_are_no_catalogue_signal_are_not_recognised(name: str) -> None:
    assert identify(*sample(name)) is None


def test_the_real_nws_hurricane_warning_is_a_tropical_cyclone() -> None:
    assert identify(*sample("us_nws_hurricane_update_multipolygon.xml")) == Signal("台风", None)
