"""Tests for warnbot.evaluate: which incident transitions a warning causes.

Warnings are real CAP documents parsed by ``warnbot.ingest.cap.parse``: the demo feed's
orange rainstorm (and variants of its XML), and CWA's real heavy-rain chain from Taiwan
(Alert → Update → Update → Cancel), whose references get the sent-time wrong by a second.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tests.conftest import DATA, DEMO, T0
from tests.factories import incident
from warnbot.evaluate import OpenIncident, Transition, evaluate, incident_key
from warnbot.ingest.cap import parse
from warnbot.model import Level
from warnbot.model import Warning as CapWarning
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
