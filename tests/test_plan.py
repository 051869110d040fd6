"""Tests for warnbot.plan: who is reached for an incident, on which channel, by when.

Most tests use the demo roster as loaded from config/demo/roster.csv: a city (449900), its
county 示例县 (449901), three townships and five villages, and a duty officer.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

from tests.conftest import DEMO, T0
from tests.factories import incident, person
from warnbot import rosters
from warnbot.model import Delivery, Level, LevelPolicy, Responder, Tier, TierPolicy
from warnbot.plan import duty_officers, plan
from warnbot.settings import load_settings

PEOPLE = rosters.load(DEMO / "roster.csv")
BY_KEY = {p.key: p for p in PEOPLE}
ROOT_CONFIG = DEMO.parent / "warnbot.toml"
ALL_TIERS = LevelPolicy({t: TierPolicy(ack_window_s=600) for t in Tier})


def keys(deliveries: list[Delivery]) -> list[str]:
    return [d.responder.key for d in deliveries]


def test_a_county_incident_reaches_everyone_in_the_county_and_the_city_above() -> None:
    deliveries = plan(incident(T0, region="449901", policy=ALL_TIERS), PEOPLE, "twilio", T0)
    assert keys(deliveries) == [
        "C01", "X01", "X02", "T01", "T02", "T03", "V01", "V02", "V03", "V04", "V05",
    ]  # fmt: skip


def test_a_township_incident_reaches_its_villages_and_offices_above_not_other_townships() -> None:
    deliveries = plan(incident(T0, region="449901001", policy=ALL_TIERS), PEOPLE, "twilio", T0)
    assert keys(deliveries) == ["C01", "X01", "X02", "T01", "V01", "V02"]


def test_a_village_incident_reaches_its_village_and_every_office_above_it() -> None:
    deliveries = plan(incident(T0, region="449901002002", policy=ALL_TIERS), PEOPLE, "twilio", T0)
    assert keys(deliveries) == ["C01", "X01", "X02", "T02", "V04"]


def test_an_incident_in_a_sibling_county_reaches_only_the_city() -> None:
    deliveries = plan(incident(T0, region="449902", policy=ALL_TIERS), PEOPLE, "twilio", T0)
    assert keys(deliveries) == ["C01"]


def test_an_incident_in_another_city_reaches_nobody() -> None:
    assert plan(incident(T0, region="449801", policy=ALL_TIERS), PEOPLE, "twilio", T0) == []


def test_only_the_tiers_in_the_incidents_policy_are_reached() -> None:
    policy = LevelPolicy({Tier.COUNTY: TierPolicy(900), Tier.VILLAGE: TierPolicy(1800)})
    deliveries = plan(incident(T0, region="449901", policy=policy), PEOPLE, "twilio", T0)
    assert keys(deliveries) == ["X01", "X02", "V01", "V02", "V03", "V04", "V05"]


def test_the_real_level_II_policy_leaves_the_city_out() -> None:
    settings = load_settings(ROOT_CONFIG)
    policy = settings.level_policy(Level.II)
    deliveries = plan(
        incident(T0, level=Level.II, region="449901", policy=policy), PEOPLE, "console", T0
    )
    assert {d.tier for d in deliveries} == {Tier.COUNTY, Tier.TOWNSHIP, Tier.VILLAGE}
    assert "C01" not in keys(deliveries)


def test_an_empty_policy_reaches_nobody() -> None:
    assert plan(incident(T0, policy=LevelPolicy({})), PEOPLE, "twilio", T0) == []


def test_duty_officers_are_not_planned_even_in_a_reached_tier_and_region() -> None:
    assert "duty_officer" in BY_KEY["D01"].roles
    assert BY_KEY["D01"].tier in ALL_TIERS.tiers
    deliveries = plan(incident(T0, region="449900", policy=ALL_TIERS), PEOPLE, "twilio", T0)
    assert "D01" not in keys(deliveries)
    assert len(deliveries) == len(PEOPLE) - 1


def test_a_duty_officer_with_other_roles_too_is_still_not_planned() -> None:
    officer = person("D9", tier=Tier.COUNTY, region="449901", roles=("technical", "duty_officer"))
    assert plan(incident(T0, policy=ALL_TIERS), [officer], "twilio", T0) == []


def test_people_without_a_phone_are_skipped() -> None:
    reachable = person("V9", region="449901001001")
    phoneless = replace(person("V8", region="449901001001"), phones=())
    deliveries = plan(incident(T0, policy=ALL_TIERS), [phoneless, reachable], "twilio", T0)
    assert keys(deliveries) == ["V9"]


def test_each_deadline_is_now_plus_the_window_of_the_persons_tier() -> None:
    policy = LevelPolicy({
        Tier.CITY: TierPolicy(ack_window_s=600),
        Tier.COUNTY: TierPolicy(ack_window_s=900),
        Tier.TOWNSHIP: TierPolicy(ack_window_s=1200),
        Tier.VILLAGE: TierPolicy(ack_window_s=1800.5),
    })  # fmt: skip
    now = T0 + timedelta(hours=3)
    deliveries = plan(incident(T0, region="449901001", policy=policy), PEOPLE, "twilio", now)
    assert {d.tier: d.deadline - now for d in deliveries} == {
        Tier.CITY: timedelta(seconds=600),
        Tier.COUNTY: timedelta(seconds=900),
        Tier.TOWNSHIP: timedelta(seconds=1200),
        Tier.VILLAGE: timedelta(seconds=1800.5),
    }


def test_a_delivery_goes_to_the_persons_first_phone_on_the_given_channel() -> None:
    two_phones = replace(
        person("V9", region="449901001001"), phones=("+8613812345678", "+8613912345678")
    )
    (d,) = plan(incident(T0, policy=ALL_TIERS), [two_phones], "console", T0)
    assert (d.channel, d.address, d.tier, d.responder) == (
        "console", "+8613812345678", Tier.VILLAGE, two_phones,
    )  # fmt: skip


def test_deliveries_come_top_tier_first_then_by_key_whatever_the_roster_order() -> None:
    shuffled = list(PEOPLE)
    random.Random(2026).shuffle(shuffled)
    deliveries = plan(incident(T0, region="449901", policy=ALL_TIERS), shuffled, "twilio", T0)
    tiers = [d.tier for d in deliveries]
    assert tiers == sorted(tiers, key=list(Tier).index)
    assert deliveries == plan(incident(T0, region="449901", policy=ALL_TIERS), PEOPLE, "twilio", T0)
    for tier in Tier:
        in_tier = [d.responder.key for d in deliveries if d.tier == tier]
        assert in_tier == sorted(in_tier)


def test_duty_officers_lists_only_people_with_the_role_and_a_phone() -> None:
    phoneless = replace(
        person("D2", tier=Tier.CITY, region="449900", roles=("duty_officer",)), phones=()
    )
    assert [p.key for p in duty_officers([*PEOPLE, phoneless])] == ["D01"]


def test_duty_officers_of_a_roster_without_any_is_empty() -> None:
    people: list[Responder] = [p for p in PEOPLE if p.key != "D01"]
    assert duty_officers(people) == []
