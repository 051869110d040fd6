"""The whole 叫应 loop: CAP in → requests sent → acks recorded → the silent escalated."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from tests.conftest import DEMO, PUBLIC_URL, Clock, sign
from warnbot import board
from warnbot.app import App
from warnbot.fakes.twilio import FakeTwilio
from warnbot.ingest import cap
from warnbot.model import Step
from warnbot.web import make_app

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()


async def _reply(client: TestClient, phone: str, body: str) -> str:
    form = {"From": phone, "To": "+15005550006", "Body": body}
    resp = await client.post(
        "/hooks/twilio/sms", data=form, headers=sign(f"{PUBLIC_URL}/hooks/twilio/sms", form)
    )
    assert resp.status == 200
    return await resp.text()


async def test_cap_in_acks_recorded_and_the_silent_escalated(
    app: App, fake_twilio: FakeTwilio, clock: Clock, aiohttp_client
) -> None:
    client = await aiohttp_client(make_app(app))
    (opened,) = await app.ingest("demo", cap.parse(FEED))
    assert (opened.kind, opened.level.roman, opened.region_code) == ("open", "Ⅱ", "449901")
    await app.pump()
    phones = {p.key: p.phones[0] for p in app.people.values()}
    # 11 asks, and the duty officer on shift is told the response opened (值班提示)
    assert len(fake_twilio.messages) == 12 and fake_twilio.rejected == []
    (alert,) = [m for m in fake_twilio.messages if m.to == phones["D01"]]
    assert "【值班提示·启动响应】" in (alert.body or "") and "11名责任人" in (alert.body or "")

    clock.advance(1)
    for key in ("C01", "X01", "X02", "T01", "T02", "V01", "V02"):
        assert "已确认收到" in await _reply(client, phones[key], "1")
    assert "Confirmed" in await _reply(client, phones["T03"], "ok")  # answered in English

    clock.advance(2.5)  # past every 3 s window: one reminder each for V03, V04, V05
    reminders = await app.tick()
    assert sorted(s.responder_key for s in reminders) == ["V03", "V04", "V05"]
    await app.pump()
    assert sum("第2次提醒" in (m.body or "") for m in fake_twilio.messages) == 3

    assert "逾时确认" in await _reply(client, phones["V04"], "收到")  # late, not lost
    clock.advance(1.5)  # the reminder went unanswered: a call first
    calls = await app.tick()
    assert {(s.kind, s.responder_key) for s in calls} == {("voice", "V03"), ("voice", "V05")}
    clock.advance(1)  # the call went unanswered too: tell the superiors
    told = [s for s in await app.tick() if s.kind == "superior"]
    assert {(s.responder_key, s.target_key) for s in told} == {("V03", "T02"), ("V05", "T03")}
    await app.pump()
    silent_reports = [
        m
        for m in fake_twilio.messages
        if m.to in (phones["T02"], phones["T03"])
        and "V0" not in (m.body or "")
        and ("未应答" in (m.body or "") or "No answer" in (m.body or ""))
    ]
    assert len(silent_reports) == 2

    tallies = board.tally(await app.store.requests_of(1), clock())
    assert board.summary(tallies) == "叫应: 9/11 confirmed, 2 escalated"
    assert await app.tick() == []  # nothing fires twice


async def test_the_same_feed_seen_again_opens_nothing_new(app: App) -> None:
    warning = cap.parse(FEED)
    assert len(await app.ingest("demo", warning)) == 1
    assert await app.ingest("demo", warning) == []
    assert await app.ingest("another-feed", warning) == []


async def test_silence_with_no_superior_is_reported_to_the_duty_officer(
    app: App, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    await app.ingest("demo", cap.parse(FEED))
    clock.advance(6)  # the superior's time: everyone is silent
    told = await app.tick()
    city = [s for s in told if s.responder_key == "C01" and s.kind != "voice"]
    assert [(s.kind, s.target_key) for s in city] == [("superior", None)]
    await app.pump()
    duty_phone = app.people["D01"].phones[0]
    (report,) = [
        m for m in fake_twilio.messages if m.to == duty_phone and "启动响应" not in (m.body or "")
    ]
    assert "林晓晴" in (report.body or "")


def _next_in_chain(previous: bytes, n: int, msg_type: str, colour: str = "橙色") -> bytes:
    """The demo warning's n-th successor, referencing ``previous`` as CAP does."""
    old = cap.parse(previous)
    text = FEED.decode().replace("_20260815061500_1", f"_20260815061500_{n}")
    text = text.replace(
        "<msgType>Alert</msgType>",
        f"<msgType>{msg_type}</msgType><references>"
        f"{old.sender},{old.identifier},2026-08-15T06:15:0{n}+08:00</references>",
    )
    return text.replace("暴雨橙色", f"暴雨{colour}").encode()


async def test_an_incident_follows_its_cap_chain_until_the_cancel_lifts_it(
    app: App, fake_twilio: FakeTwilio
) -> None:
    update_red = _next_in_chain(FEED, 2, "Update", colour="红色")
    update_same = _next_in_chain(update_red, 3, "Update", colour="红色")
    cancel = _next_in_chain(update_same, 4, "Cancel", colour="红色")
    kinds = []
    for doc in (FEED, update_red, update_same, cancel):
        kinds += [t.kind for t in await app.ingest("demo", cap.parse(doc))]
    assert kinds == ["open", "upgrade", "update", "lift"]
    assert await app.store.open_incidents() == []
    assert await app.store.pending() == []


async def test_an_incident_lifts_when_its_warning_expires(app: App, clock: Clock) -> None:
    expiring = FEED.decode().replace(
        "<severity>Severe</severity>",
        "<severity>Severe</severity><expires>2026-08-15T08:15:00+08:00</expires>",
    )
    clock.now = clock.now.replace(hour=0, minute=5)  # 08:05 Beijing: after sent, before expiry
    await app.ingest("demo", cap.parse(expiring.encode()))
    assert await app.lift_lapsed() == []
    clock.advance(2 * 3600)
    (lift,) = await app.lift_lapsed()
    assert lift.kind == "lift" and "expired" in lift.reason
    assert await app.store.open_incidents() == [] and await app.store.pending() == []


async def test_an_upgrade_asks_everyone_again_under_the_new_level_and_stops_the_old_ladder(
    app: App, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    policy = app.settings.policy
    orange_without_city = {t: p for t, p in policy["Ⅱ"].items() if t.value != "city"}
    app.settings = app.settings.model_copy(update={"policy": {**policy, "Ⅱ": orange_without_city}})
    await app.ingest("demo", cap.parse(FEED))
    before = {r.responder_key for r in await app.store.requests_of(1)}
    assert "C01" not in before and len(before) == 10
    await app.store.record_ack(1, "sms", "1", clock())
    red = _next_in_chain(FEED, 2, "Update", colour="红色")
    assert [t.kind for t in await app.ingest("demo", cap.parse(red))] == ["upgrade"]
    rows = await app.store.requests_of(1)
    old = [r for r in rows if r.level is not None and r.level.roman == "Ⅱ"]
    new = [r for r in rows if r.level is not None and r.level.roman == "Ⅰ"]
    assert {r.responder_key for r in old} == before
    assert {r.status for r in old} == {"superseded", "confirmed"}
    assert sorted(r.responder_key for r in new) == sorted([*before, "C01"])
    assert {r.status for r in new} == {"pending"} and {r.reply_code for r in new} == {"11"}
    assert {s.key.split(":")[1] for s in await _ladder(app, clock, 4)} == {
        str(r.id) for r in new
    }  # only the new level's requests climb
    await app.pump()
    upgraded = {m.to for m in fake_twilio.messages if re.search("响应升级|Upgraded", m.body or "")}
    phones = {p.key: p.phones[0] for p in app.people.values()}
    assert upgraded == {phones[k] for k in before}
    incident = await app.store.incident(1)
    assert incident is not None and "city" in {t.value for t in incident.policy.tiers}


async def _ladder(app: App, clock: Clock, seconds: float) -> list[Step]:
    clock.advance(seconds)
    return await app.tick()


async def test_a_lift_tells_everyone_reached_and_stops_the_ladder(
    app: App, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    await app.ingest("demo", cap.parse(FEED))
    cancel = _next_in_chain(FEED, 2, "Cancel")
    assert [t.kind for t in await app.ingest("demo", cap.parse(cancel))] == ["lift"]
    assert await _ladder(app, clock, 3600) == []
    while await app.pump():
        pass
    lifted = [m for m in fake_twilio.messages if re.search("解除响应|lifted", m.body or "")]
    duty = app.people["D01"].phones[0]
    assert sorted(m.to for m in lifted if m.to != duty) == sorted(
        p.phones[0] for p in app.people.values() if "duty_officer" not in p.roles
    )
    (alert,) = [m for m in lifted if m.to == duty]  # 值班提示: once, as an alert
    assert "【值班提示·解除响应】" in (alert.body or "")
