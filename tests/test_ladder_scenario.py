"""One 叫应 scenario end to end through App, on SQLite and PostgreSQL: four tiers, 325
invented responsible persons (1 city, 4 counties, 20 townships, 300 villages), some
answering at once, some late, some only to the voice call, some never.

Every message goes through the official Twilio SDK to the fake Twilio (its OpenAPI
check is off here: at ~70 ms a request it would be most of the run, and every request
shape this sends is checked by the smaller loop tests); answers arrive through App's own
intake (SMS replies, signed links, keypad tokens, a duty officer's entry), delivery
reports through ``App.delivery_report``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, DEMO, T0, Clock, twilio_settings
from warnbot import board
from warnbot.app import App, build
from warnbot.evaluate import Transition
from warnbot.fakes.twilio import FakeTwilio
from warnbot.model import AckPath, Level, Responder, Tier
from warnbot.settings import TierPolicySettings, load_settings
from warnbot.store import Store
from warnbot.store.tables import escalations

START = T0  # the clock fixture starts here: the ask goes out at T0
LADDER = TierPolicySettings(
    ack_window_s=600,
    repeat_count=1,
    repeat_interval_s=300,
    voice_after_s=900,
    superior_after_s=1200,
    duty_officer_after_s=1800,
    unreachable_after_s=3600,
)


def invented_roster() -> list[Responder]:
    """示例市 449900 → 4 counties → 5 townships each → 15 villages each, plus a duty officer."""
    n = iter(range(1, 1000))

    def person(
        key: str,
        tier: Tier,
        region: str,
        superior: str | None,
        roles: tuple[str, ...] = ("administrative",),
    ) -> Responder:
        return Responder(
            key, f"示例{key}", tier, region, (f"+86138001{next(n):05d}",), roles, "zh", superior
        )

    people = [
        person("D00", Tier.CITY, "449900", None, ("duty_officer",)),
        person("C00", Tier.CITY, "449900", None),
    ]
    for c in range(1, 5):
        county = f"44990{c}"
        people.append(person(f"K{c}", Tier.COUNTY, county, "C00"))
        for t in range(1, 6):
            township = f"{county}00{t}"
            people.append(person(f"T{c}{t}", Tier.TOWNSHIP, township, f"K{c}"))
            for v in range(1, 16):
                people.append(
                    person(f"V{c}{t}{v:02d}", Tier.VILLAGE, f"{township}{v:03d}", f"T{c}{t}")
                )
    return people


@dataclass(frozen=True)
class Cast:
    """Who answers how: the rest answer by SMS "1" within the window."""

    never: frozenset[str]
    late: frozenset[str]  # answer "收到" after the reminder
    by_voice: frozenset[str]  # press 1 on the voice call
    by_link: frozenset[str]
    by_duty_officer: frozenset[str]  # silent, then confirmed by phone through the duty officer


def cast(people: list[Responder]) -> Cast:
    """Disjoint groups of villages by index, and a silent township and county head."""
    groups: dict[str, set[str]] = {g: set() for g in ("never", "duty", "late", "voice", "link")}
    rules = (("never", 7, 0), ("duty", 29, 4), ("late", 11, 1), ("voice", 13, 2), ("link", 5, 3))
    villages = [p.key for p in people if p.tier == Tier.VILLAGE]
    for i, key in enumerate(villages):
        group = next((g for g, every, at in rules if i % every == at), None)
        if group:
            groups[group].add(key)
    return Cast(
        never=frozenset(groups["never"] | {"T12", "K3"}),
        late=frozenset(groups["late"]),
        by_voice=frozenset(groups["voice"]),
        by_link=frozenset(groups["link"] | {"C00"}),
        by_duty_officer=frozenset(groups["duty"]),
    )


async def drain(app: App) -> None:
    while await app.pump():
        pass


async def answer(app: App, keys: frozenset[str], path: str, text: str = "1") -> None:
    for key in sorted(keys):
        if path == "sms":
            assert "已确认收到" in await app.sms_reply(app.people[key].phones[0], text)
        else:
            (req,) = await app.store.open_requests_for(key)
            outcome = await app.token_ack(app.token(req.id), AckPath(path))
            assert outcome is not None and outcome.kind == "confirmed"


async def tick_at(app: App, clock: Clock, t: float) -> list[str]:
    """Tick at ``t`` seconds after the ask, twice (a repeated tick fires nothing)."""
    clock.now = START + timedelta(seconds=t)
    fired = await app.tick()
    assert await app.tick() == []
    await drain(app)
    return [s.key for s in fired]


@pytest.fixture
async def fast_twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, validate=False) as fake:
        yield fake


@pytest.fixture
async def city(store: Store, fast_twilio: FakeTwilio, clock: Clock) -> AsyncIterator[App]:
    """The demo configuration on both engines, sending to the non-validating fake."""
    settings = twilio_settings(load_settings(DEMO / "warnbot.toml"), fast_twilio.base_url)
    started = build(settings, store=store)
    started.clock = clock
    await started.start()
    yield started
    await started.stop()


async def test_four_tiers_and_325_people_climb_the_ladder_once_each(
    city: App, fast_twilio: FakeTwilio, clock: Clock
) -> None:
    app, fake_twilio = city, fast_twilio
    people = invented_roster()
    await app.store.sync_roster(people)
    await app.reload_people()
    policy = {"Ⅰ": {t: LADDER for t in Tier}}
    app.settings = app.settings.model_copy(update={"policy": policy})
    opening = Transition(
        "open", "暴雨@449900", "暴雨", "449900", Level.I, "示例市暴雨红色预警", "test"
    )
    await app.apply(opening, None, source="test")
    await drain(app)
    responders = [p for p in people if p.key != "D00"]
    duty_phone = app.people["D00"].phones[0]
    asks = [m for m in fake_twilio.messages if m.to != duty_phone]
    assert len(asks) == len(responders) == 325
    (opened,) = [m for m in fake_twilio.messages if m.to == duty_phone]  # 值班提示
    assert "启动响应" in (opened.body or "") and "325名责任人" in (opened.body or "")
    requests = {r.responder_key: r for r in await app.store.requests_of(1)}
    assert set(requests) == {p.key for p in responders}

    # the provider reports the first SMS of the silent ones (and a few others) delivered
    roles = cast(people)
    silent_at_first = roles.never | roles.late | roles.by_voice | roles.by_duty_officer
    phones = {p.phones[0]: p.key for p in people}
    reported = {m.to for m in fake_twilio.messages[::10]} | {
        app.people[k].phones[0] for k in silent_at_first
    }
    for m in fake_twilio.messages:
        if m.to in reported:
            await app.delivery_report(m.sid, "delivered", None)
    states = {r.responder_key: r.status for r in await app.store.requests_of(1)}
    assert {k for k, s in states.items() if s == "delivered"} == {phones[p] for p in reported}

    # a config reload during the incident changes nothing of its ladder
    faster = {"Ⅰ": {t: TierPolicySettings(ack_window_s=1, repeat_count=0) for t in Tier}}
    app.settings = app.settings.model_copy(update={"policy": faster})

    clock.now = START + timedelta(seconds=60)
    await answer(app, roles.by_link, "link")
    await answer(app, frozenset(p.key for p in responders) - silent_at_first - roles.by_link, "sms")
    assert await tick_at(app, clock, 599) == []

    reminders = await tick_at(app, clock, 600)
    assert sorted(reminders) == sorted(f"repeat:{requests[k].id}:1" for k in silent_at_first)
    await tick_at(app, clock, 700)
    clock.now = START + timedelta(seconds=700)
    await answer(app, roles.late, "sms", "收到")

    calls = await tick_at(app, clock, 900)
    still = roles.never | roles.by_voice | roles.by_duty_officer
    assert sorted(calls) == sorted(f"voice:{requests[k].id}:1" for k in still)
    called = Counter(c.to for c in fake_twilio.calls)
    assert called == Counter(app.people[k].phones[0] for k in still)
    assert all("Gather" in (c.twiml or "") for c in fake_twilio.calls)
    clock.now = START + timedelta(seconds=950)
    await answer(app, roles.by_voice, "keypad")

    silent = roles.never | roles.by_duty_officer
    told = await tick_at(app, clock, 1200)
    assert sorted(told) == sorted(f"superior:{requests[k].id}" for k in silent)
    reports = [m for m in fake_twilio.messages if "叫应未应答" in (m.body or "")]
    superiors = {app.people[k].superior for k in silent}
    assert sorted(m.to for m in reports) == sorted(app.people[s].phones[0] for s in superiors if s)

    await tick_at(app, clock, 1500)
    for key in sorted(roles.by_duty_officer):
        outcome = await app.duty_ack(1, key, "值班员王五", note="电话确认，已在岗")
        assert outcome.kind == "confirmed"
    duty = await tick_at(app, clock, 1800)
    assert sorted(duty) == sorted(f"duty_officer:{requests[k].id}" for k in roles.never)
    (to_duty,) = [m for m in fake_twilio.messages if "值班" in (m.body or "") and "仍未" in m.body]
    assert to_duty.to == app.people["D00"].phones[0]
    assert all(app.people[k].name in to_duty.body for k in roles.never)

    gone = await tick_at(app, clock, 3600)
    assert sorted(gone) == sorted(f"unreachable:{requests[k].id}" for k in roles.never)
    (alert,) = [m for m in fake_twilio.messages if "无法联系" in (m.body or "")]
    assert alert.to == duty_phone and all(app.people[k].name in alert.body for k in roles.never)
    assert await tick_at(app, clock, 86_400) == []

    # every person's final state
    final = {r.responder_key: r for r in board.current(await app.store.requests_of(1))}
    now = clock()
    expected = {
        p.key: "unreachable"
        if p.key in roles.never
        else "late"
        if p.key in roles.late | roles.by_voice | roles.by_duty_officer
        else "confirmed"
        for p in responders
    }
    assert {k: board.state(r, now) for k, r in final.items()} == expected
    assert {k for k, r in final.items() if r.escalated_at} == silent

    # each step fired exactly once, and only those
    async with app.store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(escalations.c.key, escalations.c.kind))).all()
    kinds = Counter(kind for _, kind in rows)
    assert kinds == {
        "repeat": len(silent_at_first),
        "voice": len(still),
        "superior": len(silent),
        "duty_officer": len(roles.never),
        "unreachable": len(roles.never),
    }

    # the audit trail names the duty officer; every answer is kept verbatim
    answers = await app.store.answers_of(1)
    by_phone = [a for a in answers if a.path == "duty_officer"]
    assert {a.responder_key for a in by_phone} == roles.by_duty_officer
    assert {(a.by_name, a.text) for a in by_phone} == {("值班员王五", "电话确认，已在岗")}
    assert {a.text for a in answers if a.responder_key in roles.late} == {"收到"}

    tallies = {t.tier: t for t in board.tally(await app.store.requests_of(1), now)}
    village = tallies[Tier.VILLAGE]
    assert village.total == 300
    assert village.unreachable == len([k for k in roles.never if k.startswith("V")])
    assert (tallies[Tier.COUNTY].unreachable, tallies[Tier.TOWNSHIP].unreachable) == (1, 1)
