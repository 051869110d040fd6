"""Tests for warnbot.evaluate: which incident transitions a warning, or a run of
readings, causes.

Warnings are real CAP documents parsed by ``warnbot.ingest.cap.parse``: the demo feed's
orange rainstorm (and variants of its XML), and CWA's real heavy-rain chain from Taiwan
(Alert → Update → Update → Cancel), whose references get the sent-time wrong by a second.
Readings are an invented river gauge and rain gauge; the lifecycle properties feed random
series around a threshold through ``evaluate_observations`` one reading at a time.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import DATA, DEMO, T0
from tests.factories import incident
from warnbot.evaluate import (
    OpenIncident,
    Transition,
    evaluate,
    evaluate_observations,
    incident_key,
    longest_window_s,
)
from warnbot.ingest.cap import parse
from warnbot.model import Area, Incident, Level, Observation
from warnbot.model import Warning as CapWarning
from warnbot.regions import load_tree
from warnbot.rules import ThresholdRule
from warnbot.settings import CapRule, load_settings

RULES = load_settings(DEMO / "warnbot.toml").rules
DEMO_XML = (DEMO / "feed" / "rainstorm_orange.xml").read_text(encoding="utf-8")
ORANGE = parse(DEMO_XML.encode())
CAP_DIR = DATA / "samples" / "cap"
TW_FILES = sorted(CAP_DIR.glob("tw_cwa_heavyrain_*.xml"))
TW_ALERT, TW_UPDATE, TW_UPDATE_2, TW_CANCEL = (parse(p.read_bytes()) for p in TW_FILES)
KEY = "暴雨@449901"
SECOND_AREA = (
    "<area><areaDesc>示例县二</areaDesc>"
    "<geocode><valueName>行政区划代码</valueName><value>449902</value></geocode></area>"
)
TWO_COUNTIES_XML = DEMO_XML.replace("</area>", f"</area>\n    {SECOND_AREA}")


def demo_warning(
    *,
    identifier: str = "44990141600000_20260815061500_1",
    colour: str = "橙色",
    msg_type: str = "Alert",
    status: str = "Actual",
    references: str | None = None,
    expires: str | None = None,
    county: str = "449901",
) -> CapWarning:
    """The demo feed's XML with the given fields changed, parsed as a feed would be."""
    xml = (
        DEMO_XML.replace("44990141600000_20260815061500_1", identifier)
        .replace("暴雨橙色预警信号", f"暴雨{colour}预警信号")
        .replace("<msgType>Alert</msgType>", f"<msgType>{msg_type}</msgType>")
        .replace("<status>Actual</status>", f"<status>{status}</status>")
        .replace("<value>449901</value>", f"<value>{county}</value>")
    )
    if references is not None:
        xml = xml.replace("</scope>", f"</scope>\n  <references>{references}</references>")
    if expires is not None:
        xml = xml.replace("<senderName>", f"<expires>{expires}</expires>\n    <senderName>")
    return parse(xml.encode())


def reference_to(w: CapWarning, sent_offset_s: float = 0) -> str:
    sent = (w.sent + timedelta(seconds=sent_offset_s)).isoformat()
    return f"{w.sender},{w.identifier},{sent}"


def open_at(
    level: Level, opened_by: CapWarning | None, incident_id: int = 7, region: str = "449901"
) -> OpenIncident:
    """An open incident (the store's view) whose latest warning is ``opened_by``."""
    found = replace(incident(T0, level=level, region=region), id=incident_id)
    return found, opened_by.key if opened_by else None


def kinds(transitions: list[Transition]) -> list[tuple[str, str, Level, int | None]]:
    return [(t.kind, t.key, t.level, t.incident_id) for t in transitions]


# --- open, upgrade, downgrade, no change ---------------------------------------------------


def test_an_orange_rainstorm_opens_a_level_II_incident_for_the_county() -> None:
    (t,) = evaluate(RULES, ORANGE, [], ORANGE.sent)
    assert t == Transition(
        kind="open",
        key=KEY,
        hazard="暴雨",
        region_code="449901",
        level=Level.II,
        headline="示例县气象台发布暴雨橙色预警信号",
        reason=t.reason,
        incident_id=None,
    )
    assert "暴雨橙色 → Ⅱ级" in t.reason
    assert ORANGE.identifier in t.reason


def test_the_incident_key_is_hazard_at_region() -> None:
    assert incident_key("暴雨", "449901") == KEY


def test_a_red_warning_upgrades_the_open_orange_incident_to_level_I() -> None:
    red = demo_warning(
        identifier="red-1", colour="红色", msg_type="Update", references=reference_to(ORANGE)
    )
    transitions = evaluate(RULES, red, [open_at(Level.II, ORANGE)], red.sent)
    assert kinds(transitions) == [("upgrade", KEY, Level.I, 7)]


def test_a_new_red_alert_for_the_same_county_upgrades_the_open_incident() -> None:
    red = demo_warning(identifier="red-1", colour="红色")
    transitions = evaluate(RULES, red, [open_at(Level.II, ORANGE)], red.sent)
    assert kinds(transitions) == [("upgrade", KEY, Level.I, 7)]


def test_an_orange_update_downgrades_an_open_level_I_incident() -> None:
    red = demo_warning(identifier="red-1", colour="红色")
    orange = demo_warning(identifier="orange-2", msg_type="Update", references=reference_to(red))
    transitions = evaluate(RULES, orange, [open_at(Level.I, red)], orange.sent)
    assert kinds(transitions) == [("downgrade", KEY, Level.II, 7)]


def test_a_warning_at_the_open_incidents_level_only_moves_the_incident_onto_it() -> None:
    again = demo_warning(identifier="orange-2", msg_type="Update", references=reference_to(ORANGE))
    transitions = evaluate(RULES, again, [open_at(Level.II, ORANGE)], again.sent)
    assert kinds(transitions) == [("update", KEY, Level.II, 7)]


def test_a_warning_no_rule_matches_opens_nothing() -> None:
    yellow = demo_warning(colour="黄色")
    assert evaluate(RULES, yellow, [], yellow.sent) == []


def test_a_warning_for_a_county_outside_the_rules_opens_nothing() -> None:
    elsewhere = demo_warning(county="449801")
    assert evaluate(RULES, elsewhere, [], elsewhere.sent) == []


def test_the_highest_level_any_rule_asks_for_wins() -> None:
    strict = CapRule(
        name="任何暴雨 → Ⅰ级",
        hazard="暴雨",
        events=["暴雨"],
        region_codes=["449901"],
        level=Level.I,
    )
    lenient = CapRule(
        name="任何暴雨 → Ⅳ级",
        hazard="暴雨",
        events=["暴雨"],
        region_codes=["449900"],
        level=Level.IV,
    )
    for rules in ([*RULES, strict, lenient], [lenient, strict, *RULES]):
        (t,) = evaluate(rules, ORANGE, [], ORANGE.sent)
        assert (t.kind, t.level) == ("open", Level.I)
        assert "任何暴雨 → Ⅰ级" in t.reason


def test_one_incident_opens_per_region_the_warning_names() -> None:
    two_counties = parse(TWO_COUNTIES_XML.encode())
    transitions = evaluate(RULES, two_counties, [], two_counties.sent)
    assert kinds(transitions) == [
        ("open", "暴雨@449901", Level.II, None),
        ("open", "暴雨@449902", Level.II, None),
    ]


def test_a_warning_opens_only_the_regions_not_already_open() -> None:
    two_counties = parse(TWO_COUNTIES_XML.encode())
    transitions = evaluate(RULES, two_counties, [open_at(Level.II, None)], two_counties.sent)
    assert kinds(transitions) == [
        ("update", "暴雨@449901", Level.II, 7),
        ("open", "暴雨@449902", Level.II, None),
    ]


# --- CAP Cancel and Update follow references ----------------------------------------------


def test_the_real_taiwan_update_references_its_alert_with_the_sent_time_a_second_off() -> None:
    # The data the next tests rely on: CWA writes the referenced sent-time one second late.
    (ref,) = TW_UPDATE.references
    sender, identifier, sent = ref.split(",")
    assert (sender, identifier) == (TW_ALERT.sender, TW_ALERT.identifier)
    assert datetime.fromisoformat(sent) - TW_ALERT.sent == timedelta(seconds=1)


def test_a_cancel_lifts_the_incident_its_reference_opened() -> None:
    opened = open_at(Level.III, TW_UPDATE_2, incident_id=3)
    transitions = evaluate(RULES, TW_CANCEL, [opened], TW_CANCEL.sent)
    assert kinds(transitions) == [("lift", KEY, Level.III, 3)]
    assert TW_CANCEL.identifier in transitions[0].reason


def test_a_cancel_lifts_by_sender_and_identifier_when_the_sent_time_is_a_second_off() -> None:
    xml = (
        (TW_FILES[3])
        .read_bytes()
        .replace(
            b"2024-04-22T17:12:20+08:00</references>", b"2024-04-22T17:12:21+08:00</references>"
        )
    )
    cancel = parse(xml)
    (ref,) = cancel.references
    assert datetime.fromisoformat(ref.split(",")[2]) != TW_UPDATE_2.sent
    transitions = evaluate(RULES, cancel, [open_at(Level.III, TW_UPDATE_2)], cancel.sent)
    assert kinds(transitions) == [("lift", KEY, Level.III, 7)]


def test_a_cancel_lifts_every_incident_the_referenced_warning_opened_and_only_those() -> None:
    opened = [
        open_at(Level.II, TW_UPDATE_2, incident_id=1, region="449901"),
        open_at(Level.II, TW_UPDATE_2, incident_id=2, region="449902"),
        open_at(Level.II, TW_ALERT, incident_id=3, region="449903"),
        open_at(Level.II, ORANGE, incident_id=4, region="449904"),
    ]
    transitions = evaluate(RULES, TW_CANCEL, opened, TW_CANCEL.sent)
    assert [t.incident_id for t in transitions] == [1, 2]
    assert {t.kind for t in transitions} == {"lift"}


def test_a_cancel_referencing_another_senders_warning_lifts_nothing() -> None:
    forged = replace(
        TW_CANCEL,
        references=(f"someone@else,{TW_UPDATE_2.identifier},{TW_UPDATE_2.sent.isoformat()}",),
    )
    assert evaluate(RULES, forged, [open_at(Level.II, TW_UPDATE_2)], forged.sent) == []


def test_a_cancel_referencing_nothing_open_lifts_nothing() -> None:
    assert evaluate(RULES, TW_CANCEL, [open_at(Level.II, ORANGE)], TW_CANCEL.sent) == []


def test_a_cancel_lifts_even_after_it_has_expired() -> None:
    assert TW_CANCEL.expires is not None
    later = TW_CANCEL.expires + timedelta(days=1)
    transitions = evaluate(RULES, TW_CANCEL, [open_at(Level.II, TW_UPDATE_2)], later)
    assert [t.kind for t in transitions] == ["lift"]


def test_a_demo_cancel_lifts_the_demo_incident() -> None:
    cancel = demo_warning(
        identifier="cancel-1", msg_type="Cancel", references=reference_to(ORANGE, sent_offset_s=1)
    )
    transitions = evaluate(RULES, cancel, [open_at(Level.II, ORANGE)], cancel.sent)
    assert kinds(transitions) == [("lift", KEY, Level.II, 7)]


def test_an_update_that_no_rule_matches_lifts_the_incident_it_references() -> None:
    # TW_UPDATE refers to TW_ALERT with the sent-time one second off; no demo rule matches it.
    transitions = evaluate(RULES, TW_UPDATE, [open_at(Level.III, TW_ALERT)], TW_UPDATE.sent)
    assert kinds(transitions) == [("lift", KEY, Level.III, 7)]
    assert "no rule matches" in transitions[0].reason


def test_an_update_that_no_rule_matches_leaves_unreferenced_incidents_open() -> None:
    assert evaluate(RULES, TW_UPDATE, [open_at(Level.III, ORANGE)], TW_UPDATE.sent) == []


def test_an_update_that_moves_to_another_county_lifts_the_old_and_opens_the_new() -> None:
    moved = demo_warning(
        identifier="moved-2", msg_type="Update", county="449902", references=reference_to(ORANGE)
    )
    transitions = evaluate(RULES, moved, [open_at(Level.II, ORANGE)], moved.sent)
    assert kinds(transitions) == [
        ("open", "暴雨@449902", Level.II, None),
        ("lift", KEY, Level.II, 7),
    ]


def test_an_update_turning_yellow_lifts_the_orange_incident() -> None:
    yellow = demo_warning(
        identifier="yellow-2", colour="黄色", msg_type="Update", references=reference_to(ORANGE)
    )
    transitions = evaluate(RULES, yellow, [open_at(Level.II, ORANGE)], yellow.sent)
    assert kinds(transitions) == [("lift", KEY, Level.II, 7)]


# --- expiry and status -------------------------------------------------------------------


def test_an_expired_warning_opens_nothing() -> None:
    expiring = demo_warning(expires="2026-08-15T09:15:00+08:00")
    assert expiring.expires is not None
    assert evaluate(RULES, expiring, [], expiring.expires + timedelta(minutes=1)) == []


def test_a_warning_expiring_at_this_very_moment_opens_nothing() -> None:
    expiring = demo_warning(expires="2026-08-15T09:15:00+08:00")
    assert expiring.expires is not None
    assert evaluate(RULES, expiring, [], expiring.expires) == []


def test_a_warning_not_yet_expired_opens_its_incident() -> None:
    expiring = demo_warning(expires="2026-08-15T09:15:00+08:00")
    assert expiring.expires is not None
    before = expiring.expires - timedelta(seconds=1)
    assert kinds(evaluate(RULES, expiring, [], before)) == [("open", KEY, Level.II, None)]


def test_an_expired_red_update_does_not_upgrade() -> None:
    red = demo_warning(
        identifier="red-1",
        colour="红色",
        msg_type="Update",
        references=reference_to(ORANGE),
        expires="2026-08-15T06:30:00+08:00",
    )
    assert red.expires is not None
    later = red.expires + timedelta(hours=1)
    assert evaluate(RULES, red, [open_at(Level.II, ORANGE)], later) == []


@pytest.mark.parametrize("status", ["Exercise", "Test", "System", "Draft"])
def test_a_warning_that_is_not_actual_opens_nothing(status: str) -> None:
    w = demo_warning(status=status)
    assert w.status == status
    assert evaluate(RULES, w, [], w.sent) == []


def test_an_exercise_cancel_lifts_nothing() -> None:
    cancel = demo_warning(
        identifier="cancel-1", msg_type="Cancel", status="Exercise", references=reference_to(ORANGE)
    )
    assert evaluate(RULES, cancel, [open_at(Level.II, ORANGE)], cancel.sent) == []


def test_an_exercise_red_update_changes_nothing() -> None:
    red = demo_warning(
        identifier="red-1",
        colour="红色",
        msg_type="Update",
        status="Exercise",
        references=reference_to(ORANGE),
    )
    assert evaluate(RULES, red, [open_at(Level.II, ORANGE)], red.sent) == []


# --- regions: polygons, and one spelling per region --------------------------------------

TREE = load_tree(DEMO / "regions.toml")


def polygon_warning(ring: str) -> CapWarning:
    """The demo warning with its area drawn as a polygon instead of a geocode."""
    return replace(ORANGE, areas=(Area("示例区域", polygons=(ring,)),))


def test_a_polygon_warning_opens_incidents_for_the_regions_of_the_tree_it_covers() -> None:
    w = polygon_warning("23.05,114.05 23.05,114.25 23.1,114.25 23.1,114.05 23.05,114.05")
    assert evaluate(RULES, w, [], w.sent) == []  # no tree: polygons cannot be placed
    transitions = evaluate(RULES, w, [], w.sent, tree=TREE)
    assert kinds(transitions) == [
        ("open", "暴雨@449901001001", Level.II, None),
        ("open", "暴雨@449901002001", Level.II, None),
    ]


def test_a_polygon_over_the_whole_county_opens_the_county_incident() -> None:
    w = polygon_warning("22.99,113.99 22.99,114.46 23.31,114.46 23.31,113.99 22.99,113.99")
    assert kinds(evaluate(RULES, w, [], w.sent, tree=TREE)) == [("open", KEY, Level.II, None)]


def test_a_twelve_digit_code_names_the_same_incident_as_the_six_digit_one() -> None:
    w = demo_warning(identifier="cpeas-1", colour="红色", county="449901000000")
    transitions = evaluate(RULES, w, [open_at(Level.II, ORANGE)], w.sent)
    assert kinds(transitions) == [("upgrade", KEY, Level.I, 7)]
    assert transitions[0].region_code == "449901"


def test_the_incident_key_spells_the_region_one_way() -> None:
    assert incident_key("暴雨", "449901000000") == KEY
    assert incident_key("暴雨", "449901001000") == "暴雨@449901001"


def test_threshold_rules_are_ignored_by_warnings() -> None:
    gauge = ThresholdRule.model_validate(
        {"name": "g", "hazard": "暴雨", "quantity": "rainfall", "region_code": "449901"}
        | {"above": 1, "level": "Ⅰ"}
    )
    assert kinds(evaluate([*RULES, gauge], ORANGE, [], ORANGE.sent)) == [
        ("open", KEY, Level.II, None)
    ]


def test_a_signal_rule_opens_on_the_demo_warning() -> None:
    rule = CapRule.model_validate(
        {"name": "暴雨橙色", "signal": "暴雨 橙色", "region_codes": ["449900"], "level": "Ⅱ"}
    )
    assert kinds(evaluate([rule], ORANGE, [], ORANGE.sent)) == [("open", KEY, Level.II, None)]


# --- suppression: a lower warning of another chain does not lower the incident --------------

OTHER_SENDER = "44990100000000@example.invalid"


def from_other_sender(w: CapWarning, identifier: str) -> CapWarning:
    return replace(w, sender=OTHER_SENDER, identifier=identifier)


def test_a_lower_warning_of_another_sender_does_not_downgrade_the_higher_one() -> None:
    red = demo_warning(identifier="red-1", colour="红色")
    orange = from_other_sender(demo_warning(identifier="orange-9"), "orange-9")
    assert evaluate(RULES, orange, [open_at(Level.I, red)], orange.sent) == []


def test_a_new_lower_alert_of_the_same_sender_does_not_downgrade_either() -> None:
    # Without a reference the red warning is still in force: CAP Alerts do not replace.
    red = demo_warning(identifier="red-1", colour="红色")
    orange = demo_warning(identifier="orange-2")
    assert evaluate(RULES, orange, [open_at(Level.I, red)], orange.sent) == []


def test_a_lower_warning_downgrades_once_the_holding_warning_has_expired() -> None:
    red = demo_warning(identifier="red-1", colour="红色")
    orange = from_other_sender(demo_warning(identifier="orange-9"), "orange-9")
    expired = {red.key: orange.sent - timedelta(minutes=1)}
    transitions = evaluate(
        RULES, orange, [open_at(Level.I, red)], orange.sent, holder_expires=expired
    )
    assert kinds(transitions) == [("downgrade", KEY, Level.II, 7)]


def test_a_holding_warning_not_yet_expired_still_holds() -> None:
    red = demo_warning(identifier="red-1", colour="红色")
    orange = from_other_sender(demo_warning(identifier="orange-9"), "orange-9")
    later = {red.key: orange.sent + timedelta(hours=1)}
    unknown = {"someone,else": orange.sent - timedelta(hours=1)}
    for expires in (later, unknown, {red.key: None}):
        opened = [open_at(Level.I, red)]
        assert evaluate(RULES, orange, opened, orange.sent, holder_expires=expires) == []


def test_a_higher_warning_of_another_sender_upgrades() -> None:
    red = from_other_sender(demo_warning(identifier="red-9", colour="红色"), "red-9")
    assert kinds(evaluate(RULES, red, [open_at(Level.II, ORANGE)], red.sent)) == [
        ("upgrade", KEY, Level.I, 7)
    ]


def test_suppression_is_per_region() -> None:
    red = demo_warning(identifier="red-1", colour="红色")
    two_counties = from_other_sender(parse(TWO_COUNTIES_XML.encode()), "orange-9")
    transitions = evaluate(RULES, two_counties, [open_at(Level.I, red)], two_counties.sent)
    assert kinds(transitions) == [("open", "暴雨@449902", Level.II, None)]


def test_a_warning_does_not_lower_an_incident_that_readings_opened() -> None:
    assert evaluate(RULES, ORANGE, [open_at(Level.I, None)], ORANGE.sent) == []


# --- readings: threshold rules -------------------------------------------------------------

STAGE = "暴雨@449901001"


def gauge_rule(**fields: object) -> ThresholdRule:
    base: dict[str, object] = {
        "name": "河口站超警戒",
        "hazard": "暴雨",
        "quantity": "water_level",
        "stations": ["hydro:001"],
        "region_code": "449901001",
        "above": 10.0,
        "hysteresis": 0.5,
        "hold_s": 3600,
        "level": "Ⅲ",
    }
    return ThresholdRule.model_validate(base | fields)


GAUGE_III = gauge_rule()
GAUGE_II = gauge_rule(name="河口站超保证", above=12.0, level="Ⅱ")


def stage(value: float, minutes: float, station: str = "hydro:001") -> Observation:
    return Observation(
        station, "water_level", value, "m", T0 + timedelta(minutes=minutes), station_name="河口站"
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def opened_by_readings(level: Level, minutes: float = 0) -> OpenIncident:
    found = replace(incident(at(minutes), level=level, region="449901001"), id=5)
    return found, None


def test_a_reading_at_the_threshold_opens_with_value_threshold_and_rule_in_the_reason() -> None:
    (t,) = evaluate_observations([GAUGE_III], [stage(9.0, 0), stage(10.0, 10)], [], at(10))
    assert (t.kind, t.key, t.level, t.incident_id) == ("open", STAGE, Level.III, None)
    assert t.headline == "河口站超警戒（河口站 10 m）"
    assert t.reason == "rule '河口站超警戒' (Ⅲ级): water_level at 河口站 is 10 m; threshold ≥ 10"


def test_readings_below_the_threshold_open_nothing() -> None:
    assert evaluate_observations([GAUGE_III], [stage(9.99, 0)], [], at(0)) == []


def test_only_the_latest_reading_decides_an_opening() -> None:
    assert evaluate_observations([GAUGE_III], [stage(11.0, 0), stage(9.0, 10)], [], at(10)) == []


def test_readings_after_now_are_not_seen_yet() -> None:
    assert evaluate_observations([GAUGE_III], [stage(11.0, 20)], [], at(10)) == []


def test_the_highest_level_tripped_opens() -> None:
    (t,) = evaluate_observations([GAUGE_III, GAUGE_II], [stage(12.5, 0)], [], at(0))
    assert (t.kind, t.level) == ("open", Level.II)
    assert "河口站超保证" in t.reason


def test_a_higher_threshold_crossed_upgrades_the_open_incident() -> None:
    opened = opened_by_readings(Level.III)
    (t,) = evaluate_observations([GAUGE_III, GAUGE_II], [stage(12.1, 30)], [opened], at(30))
    assert (t.kind, t.level, t.incident_id) == ("upgrade", Level.II, 5)


def test_within_the_hysteresis_the_level_holds() -> None:
    readings = [stage(11.0, 0), stage(9.6, 90)]
    assert (
        evaluate_observations([GAUGE_III], readings, [opened_by_readings(Level.III)], at(90)) == []
    )


def test_clear_of_the_hysteresis_the_incident_lifts_only_after_the_hold_time() -> None:
    readings = [stage(11.0, 0), stage(9.6, 30), stage(9.4, 40), stage(9.0, 80)]
    opened = [opened_by_readings(Level.III)]
    # last held at 30 min (9.6 ≥ 9.5): the hold of 60 min runs to 90 min
    assert evaluate_observations([GAUGE_III], readings[:4], opened, at(80)) == []
    (t,) = evaluate_observations([GAUGE_III], [*readings, stage(9.0, 90)], opened, at(90))
    assert (t.kind, t.level, t.incident_id) == ("lift", Level.III, 5)
    assert "clear of 9.5 (threshold 10, hysteresis 0.5) since" in t.reason
    assert "hold 3600 s" in t.reason


def test_an_incident_is_held_for_the_hold_time_after_it_opened() -> None:
    opened = [opened_by_readings(Level.III, minutes=30)]
    assert evaluate_observations([GAUGE_III], [stage(5.0, 60)], opened, at(60)) == []
    assert [
        t.kind for t in evaluate_observations([GAUGE_III], [stage(5.0, 90)], opened, at(90))
    ] == ["lift"]


def test_falling_below_a_higher_threshold_downgrades_after_its_hold() -> None:
    readings = [stage(12.5, 0), stage(11.0, 20)]
    opened = [opened_by_readings(Level.II)]
    rules = [GAUGE_III, GAUGE_II]
    assert evaluate_observations(rules, readings, opened, at(59)) == []
    (t,) = evaluate_observations(rules, readings, opened, at(60))
    assert (t.kind, t.level) == ("downgrade", Level.III)
    assert t.reason.startswith("rule '河口站超保证': water_level at 河口站 is 11 m; clear of 11.5")
    assert "rule '河口站超警戒' (Ⅲ级): water_level at 河口站 is 11 m; threshold ≥ 10" in t.reason


def test_silence_never_lifts() -> None:
    opened = [opened_by_readings(Level.III)]
    assert evaluate_observations([GAUGE_III], [], opened, at(600)) == []
    other_station = [stage(1.0, 590, station="hydro:999")]
    assert evaluate_observations([GAUGE_III], other_station, opened, at(600)) == []


def test_readings_raise_but_never_lower_an_incident_a_warning_holds() -> None:
    held = replace(incident(T0, level=Level.III, region="449901001"), id=5), ORANGE.key
    assert evaluate_observations([GAUGE_III], [stage(1.0, 600)], [held], at(600)) == []
    (t,) = evaluate_observations([GAUGE_III, GAUGE_II], [stage(13.0, 600)], [held], at(600))
    assert (t.kind, t.level) == ("upgrade", Level.II)


def test_rainfall_summed_over_an_hour_opens_at_50_mm() -> None:
    hourly = gauge_rule(
        name="1小时雨量≥50", quantity="rainfall", measure="sum", window_s=3600, above=50.0
    )
    rain = [
        replace(stage(v, m), quantity="rainfall", unit="mm")
        for m, v in [(0, 20), (15, 10), (30, 15), (45, 10)]
    ]
    assert evaluate_observations([hourly], rain[:3], [], at(30)) == []
    (t,) = evaluate_observations([hourly], rain, [], at(45))
    assert "rainfall sum over 3600 s at 河口站 is 55 mm; threshold ≥ 50" in t.reason


def test_a_twelve_hour_sum_adds_twelve_hours_of_readings() -> None:
    twelve = gauge_rule(quantity="rainfall", measure="sum", window_s=12 * 3600, above=100.0)
    rain = [replace(stage(9.0, 60 * h), quantity="rainfall", unit="mm") for h in range(13)]
    assert evaluate_observations([twelve], rain[:11], [], at(600)) == []  # 99 mm
    (t,) = evaluate_observations([twelve], rain[:12], [], at(660))
    assert "rainfall sum over 43200 s at 河口站 is 108 mm" in t.reason


def test_a_rise_per_hour_opens() -> None:
    rising = gauge_rule(name="涨率", measure="rise", window_s=3600, above=0.5)
    readings = [stage(8.0, 0), stage(8.2, 30), stage(8.6, 60)]
    (t,) = evaluate_observations([rising], readings, [], at(60))
    assert "water_level rise per hour over 3600 s at 河口站 is 0.6 m/h; threshold ≥ 0.5" in t.reason


def test_a_below_rule_opens_when_the_level_falls() -> None:
    low = gauge_rule(name="水库低水位", above=None, below=2.0)
    (t,) = evaluate_observations([low], [stage(1.9, 0)], [], at(0))
    assert "threshold ≤ 2" in t.reason


def test_the_longest_window_includes_the_hold() -> None:
    rules = [*RULES, GAUGE_III, gauge_rule(measure="sum", window_s=7200, hold_s=600)]
    assert longest_window_s(rules) == 7800


# --- readings: properties of the lifecycle -------------------------------------------------


def simulate(
    rules: list[ThresholdRule], series: list[tuple[float, float]]
) -> list[tuple[datetime, Transition, Incident | None]]:
    """Feed readings one at a time as the app would, applying each transition; returns
    (time, transition, incident before it). Asserts the transitions fit the state."""
    state: Incident | None = None
    seen: list[Observation] = []
    log = []
    lookback = timedelta(seconds=longest_window_s(rules))
    for minutes, value in series:
        now = at(minutes)
        seen.append(stage(value, minutes))
        recent = [o for o in seen if now - o.time <= lookback]
        opened = [(state, None)] if state else []
        for t in evaluate_observations(rules, recent, opened, now):
            assert (t.kind == "open") == (state is None), "no double open, nothing without one"
            log.append((now, t, state))
            state = _applied(state, t, now)
    return log


def _applied(state: Incident | None, t: Transition, now: datetime) -> Incident | None:
    if t.kind == "lift":
        return None
    if t.kind == "open":
        return replace(incident(now, level=t.level, region=t.region_code), id=1, key=t.key)
    assert state is not None
    return replace(state, level=t.level)


def clear_window(t: datetime, now: datetime, hold: timedelta) -> bool:
    """The readings that must all be clear for a lift at ``now``: those of the last
    ``hold`` and the one at ``now`` itself."""
    return now - hold < t <= now or t == now


def timeline(gaps_values: list[tuple[int, float]]) -> list[tuple[float, float]]:
    minutes, out = 0.0, []
    for gap, value in gaps_values:
        minutes += gap
        out.append((minutes, value))
    return out


_readings = st.lists(
    st.tuples(st.integers(1, 45), st.floats(8.0, 12.0, allow_nan=False)), min_size=1, max_size=60
)
_hold_min = st.sampled_from([0, 30, 60, 120])
_hysteresis = st.sampled_from([0.0, 0.3, 1.0])


@settings(max_examples=150, deadline=None)
@given(_readings, _hold_min, _hysteresis)
def test_lifts_come_only_after_the_hold_time_clear_of_the_hysteresis(
    readings: list[tuple[int, float]], hold_min: int, hysteresis: float
) -> None:
    rule = gauge_rule(hysteresis=hysteresis, hold_s=hold_min * 60)
    series = timeline(readings)
    for now, t, before in simulate([rule], series):
        if t.kind != "lift":
            continue
        assert before is not None
        assert now - before.opened_at >= timedelta(minutes=hold_min), "never flaps faster"
        window = [v for m, v in series if clear_window(at(m), now, timedelta(minutes=hold_min))]
        assert window and all(v < rule.clears_at for v in window), (now, window)


@settings(max_examples=150, deadline=None)
@given(_readings, _hold_min, _hysteresis)
def test_opens_and_lifts_alternate_and_only_a_tripped_threshold_opens(
    readings: list[tuple[int, float]], hold_min: int, hysteresis: float
) -> None:
    rule = gauge_rule(hysteresis=hysteresis, hold_s=hold_min * 60)
    series = timeline(readings)
    log = simulate([rule], series)
    assert [t.kind for _, t, _ in log] == ["open", "lift"] * (len(log) // 2) + ["open"] * (
        len(log) % 2
    )
    values = dict(series)
    for now, t, _ in log:
        if t.kind == "open":
            assert rule.trips(values[(now - T0).total_seconds() / 60])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 45), st.floats(10.0, 30.0)), min_size=1, max_size=60),
    _hold_min,
    _hysteresis,
)
def test_a_series_that_stays_above_opens_exactly_once(
    readings: list[tuple[int, float]], hold_min: int, hysteresis: float
) -> None:
    log = simulate([gauge_rule(hysteresis=hysteresis, hold_s=hold_min * 60)], timeline(readings))
    assert [(t.kind, t.level) for _, t, _ in log] == [("open", Level.III)]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 45), st.floats(8.0, 14.0)), min_size=1, max_size=60),
    _hold_min,
    _hysteresis,
)
def test_two_levels_move_one_way_at_a_time_and_never_drop_within_the_hold(
    readings: list[tuple[int, float]], hold_min: int, hysteresis: float
) -> None:
    hold = timedelta(minutes=hold_min)
    low = gauge_rule(hysteresis=hysteresis, hold_s=hold_min * 60)
    high = gauge_rule(
        name="超保证", above=12.0, level="Ⅱ", hysteresis=hysteresis, hold_s=hold_min * 60
    )
    series = timeline(readings)
    tripped: datetime | None = None  # when the current level was last reached by tripping
    for now, t, before in simulate([low, high], series):
        assert t.level in (Level.II, Level.III)
        if t.kind in ("downgrade", "lift"):
            assert before is not None
            assert now - before.opened_at >= hold
            # a level reached by a downgrade may go as soon as its rule has been clear for
            # the hold, which can have begun before the downgrade; one reached by tripping
            # is kept at least the hold
            assert tripped is None or now - tripped >= hold
            cleared = high if before.level is Level.II else low
            window = [v for m, v in series if clear_window(at(m), now, hold)]
            assert window and all(v < cleared.clears_at for v in window)
        if t.kind == "upgrade":
            assert before is not None and t.level.outranks(before.level)
        if t.kind == "downgrade":
            assert before is not None and before.level.outranks(t.level)
        tripped = now if t.kind in ("open", "upgrade") else None
