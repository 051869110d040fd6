"""What follows an incident beside the 叫应 ladder, through the running App: reports
back (回执) summed per region, drills marked and kept from the public, public tip SMS,
unannounced drills fired once, and escalations routed to the officer on shift."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import DEMO, PUBLIC_URL, ROOT, T0, Clock, sign
from warnbot.app import App
from warnbot.drills import MARK, DrillPlan
from warnbot.fakes.twilio import FakeTwilio
from warnbot.ingest import cap
from warnbot.model import Incident, Level
from warnbot.rosters.rota import load_rota
from warnbot.settings import RateLimit
from warnbot.sms import segments
from warnbot.web import make_app

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()
ROTA = ROOT / "config" / "rosters" / "demo_rota.csv"
RESIDENTS = {"+8613900000001": "449901001001", "+8613900000002": "449901002001"}


async def _reply(client: TestClient, phone: str, body: str) -> str:
    form = {"From": phone, "To": "+15005550006", "Body": body}
    url = f"{PUBLIC_URL}/hooks/twilio/sms"
    resp = await client.post("/hooks/twilio/sms", data=form, headers=sign(url, form))
    assert resp.status == 200
    return await resp.text()


async def _open(app: App) -> Incident:
    (opened,) = await app.ingest("demo", cap.parse(FEED))
    assert opened.incident_id is None  # an open has no incident before it
    (incident, _), *_ = await app.store.open_incidents()
    return incident


def _phone(app: App, key: str) -> str:
    return app.people[key].phones[0]


async def test_reports_back_are_kept_and_summed_up_the_region_tree(
    app: App, clock: Clock, aiohttp_client
) -> None:
    client = await aiohttp_client(make_app(app))
    incident = await _open(app)
    await app.pump()
    clock.advance(1)
    assert "已确认收到" in await _reply(client, _phone(app, "T02"), "收到，已转移12户30人")
    assert "已确认收到" in await _reply(client, _phone(app, "T01"), "1")  # a bare code: no report
    later = await _reply(client, _phone(app, "T02"), "又转移3户5人")  # on its own, later
    assert "<Message>已记录回执：又转移3户5人（转移3户，转移5人）。" in later

    filed = await app.store.reports_of(incident.id)
    assert [f.report.text for f in filed] == ["收到，已转移12户30人", "又转移3户5人"]
    totals = await app.store.report_totals(incident.id, app.regions)
    township = app.people["T02"].region_code
    assert (totals[township].own.households_moved, totals[township].own.people_moved) == (15, 35)
    assert totals["449901"].total.people_moved == 35  # the county sums its townships


async def test_a_stranger_or_a_sender_with_nothing_answered_files_no_report(
    app: App, aiohttp_client
) -> None:
    client = await aiohttp_client(make_app(app))
    incident = await _open(app)
    await _reply(client, "+8613899999999", "已转移12户30人")  # on no roster
    await _reply(client, _phone(app, "V01"), "已转移12户30人")  # asked, but never confirmed
    assert await app.store.reports_of(incident.id) == []


async def test_an_unannounced_drill_fires_once_marked_and_keeps_away_from_the_public(
    app: App, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    await app.store.replace_audience("示例县居民", RESIDENTS, "test", clock())
    app.settings = app.settings.model_copy(update={"tips_audience": "示例县居民"})
    plan = DrillPlan(
        window_start=T0 - timedelta(minutes=10),
        window_end=T0 - timedelta(minutes=1),
        hazard="山洪",
        headline="示例县山洪灾害演练",
        level=Level.II,
        regions=("449901",),
        seed=7,
    )
    await app.store.schedule_drill(plan, T0 - timedelta(hours=1))

    (drill,) = await app.fire_due_drills("worker-a")
    assert drill.drill and drill.key.startswith("演练:")
    assert await app.fire_due_drills("worker-b") == []  # claimed once, by one process
    await app.pump()
    bodies = [m.body or "" for m in fake_twilio.messages]
    assert len(bodies) == 12 and all(b.startswith(MARK) for b in bodies)  # 11 asks, 值班提示
    assert not {m.to for m in fake_twilio.messages} & set(RESIDENTS)  # no public tips


async def test_a_real_incident_tips_its_public_audience_after_the_responsible_persons(
    app: App, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    await app.store.replace_audience("示例县居民", RESIDENTS, "test", clock())
    app.settings = app.settings.model_copy(update={"tips_audience": "示例县居民"})
    await _open(app)
    await app.ingest("demo", cap.parse(FEED))  # the same warning again: no second tip
    while await app.pump():
        pass
    tips = [m for m in fake_twilio.messages if m.to in RESIDENTS]
    assert sorted(m.to for m in tips) == sorted(RESIDENTS)
    assert all("回复TD退订" in (m.body or "") and MARK not in (m.body or "") for m in tips)
    assert fake_twilio.messages.index(tips[0]) >= 11  # lane 1 waits for lane 0


async def test_before_a_blast_its_size_segments_cost_and_drain_time_are_observed(
    app: App, clock: Clock
) -> None:
    await app.store.replace_audience("示例县居民", RESIDENTS, "test", clock())
    limit = RateLimit(rate_per_s=1, per_segment=True, price_per_segment=0.05)
    app.settings = app.settings.model_copy(
        update={"tips_audience": "示例县居民", "rate_limits": {"twilio": limit}}
    )
    seen: list[tuple[str, dict[str, Any]]] = []
    app.observers.append(lambda event, fields: seen.append((event, fields)))
    incident = await _open(app)
    events = [event for event, _ in seen]
    assert events.index("tips_estimate") < events.index("tips")  # before it is queued
    guess = dict(seen)["tips_estimate"]["estimate"]
    tip = app.renderer.render("sms", "tip", app.settings.language, incident=incident)
    assert (guess.messages, guess.segments) == (2, 2 * segments(tip))
    assert guess.cost == pytest.approx(guess.segments * 0.05)
    assert guess.drain_s == pytest.approx(guess.segments / limit.effective_per_s)


async def test_escalations_go_to_the_officer_on_shift_for_the_incidents_region(
    app: App, clock: Clock
) -> None:
    incident = await _open(app)
    assert [p.key for p in app.duty_officers(incident)] == ["D01"]  # no rota: the roster's
    app.rota = load_rota(ROTA, app.people.values())
    assert [p.key for p in app.duty_officers(incident)] == ["X02"]  # 示例县白班, 14:15 local
    clock.advance(8 * 3600)  # 22:15 in Shanghai: the county's night shift
    assert [p.key for p in app.duty_officers(incident)] == ["X01"]
    assert [p.key for p in app.duty_officers(None)] == ["D01"]  # the city's officer


async def test_a_level_that_calls_for_transfer_sends_each_list_and_tracks_it_to_moved(
    app: App, fake_twilio: FakeTwilio, clock: Clock, aiohttp_client, tmp_path: Path
) -> None:
    lists = tmp_path / "transfers.csv"
    lists.write_text(
        "责任人编号,序号,户主,人数,转移路线,安置点\n"
        "V01,1,王某某,3,沿村道向东500米,村委会\n"
        "V01,2,李某某（独居老人）,1,沿河堤北行,村小学\n",
        encoding="utf-8",
    )
    app.settings = app.settings.model_copy(
        update={"transfer_levels": ["Ⅱ"], "transfer_lists": lists}
    )
    await app.start()  # loads the lists
    client = await aiohttp_client(make_app(app))
    incident = await _open(app)
    assert incident.policy.transfer  # frozen onto the incident with its tiers
    await app.pump()
    body = next(m.body or "" for m in fake_twilio.messages if m.to == _phone(app, "V01"))
    assert "转移清单2户4人" in body and "1号王某某(3人)，沿村道向东500米→村委会" in body
    assert all(
        "转移清单" not in (m.body or "") for m in fake_twilio.messages if m.to != _phone(app, "V01")
    )

    clock.advance(1)
    await _reply(client, _phone(app, "V01"), "1 已转移 1号")
    (board,) = [p for p in await app.store.transfer_board(incident.id) if p.states]
    assert (board.responder_key, board.moved, len(board.states)) == ("V01", 1, 2)
