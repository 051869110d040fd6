"""Console pages and actions through the HTTP client: the manual response from form to
ack board, second confirmation for Ⅰ/Ⅱ, lift and upgrade, reminders, phone
confirmations, escaping, exports, and the reference pages."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import html
import io
import json
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from tests.conftest import PUBLIC_URL, Clock, sign
from tests.console_helpers import MANUAL, confirm_by_link, open_manual
from warnbot import links
from warnbot.app import App
from warnbot.console.incidents import CSRF_SLOT
from warnbot.console.keys import BOARDS
from warnbot.model import Level, Tier
from warnbot.store.accounts import ConsoleStore
from warnbot.store.tables import outbox

pytest_plugins = ("tests.console_fixtures",)


async def _actions(app: App) -> list[str]:
    return [e.action for e in reversed(await ConsoleStore(app.store.engine).audit_log())]


async def test_the_preview_counts_people_per_tier_and_shows_text_and_segments(
    app: App, client: TestClient, officer: str
) -> None:
    resp = await client.post("/respond/preview", data={**MANUAL, "csrf": officer})
    html = await resp.text()
    assert resp.status == 200
    # Level Ⅲ reaches county, township and village in the demo: 2 + 3 + 5 people
    assert re.search(r'data-count="county">2<', html)
    assert re.search(r'data-count="township">3<', html)
    assert re.search(r'data-count="village">5<', html)
    assert 'id="preview-total">10<' in html
    assert "示例县暴雨，启动Ⅲ级应急响应" in html
    assert await app.store.open_incidents() == []  # a preview sends nothing


async def test_confirming_a_level_iii_response_opens_it_and_asks_everyone(
    app: App, client: TestClient, officer: str
) -> None:
    incident_id = await open_manual(client, officer)
    incident = await app.store.incident(incident_id)
    assert incident is not None and incident.level == Level.III
    assert incident.source == "console:值班员张三"
    assert len(await app.store.requests_of(incident_id)) == 10
    page = await (await client.get(f"/incidents/{incident_id}")).text()
    assert len(re.findall(r'data-person="\w+" data-state="pending"', page)) == 10
    assert "<svg" in page and "一镇南村" in page  # the map, from the region outlines
    assert "manual_open" in await _actions(app)


async def test_level_ii_asks_for_a_second_confirmation_before_sending(
    app: App, client: TestClient, officer: str
) -> None:
    first = await client.post("/respond/confirm", data={**MANUAL, "level": "II", "csrf": officer})
    assert first.status == 200 and "二次确认" in await first.text()
    assert await app.store.open_incidents() == []
    incident_id = await open_manual(client, officer, level="II", second="yes")
    assert (await app.store.incident(incident_id)).level == Level.II  # type: ignore[union-attr]


async def test_a_drill_is_marked_in_every_message(
    app: App, client: TestClient, officer: str
) -> None:
    incident_id = await open_manual(client, officer, drill="on")
    await app.pump()
    bodies = [m.body for m in await app.store.sent_messages(incident_id)]
    assert len(bodies) == 11  # ten asks and the duty officer's 值班提示
    assert all(b.startswith(("【演练】", "[DRILL]")) for b in bodies), bodies


async def test_script_in_free_text_is_shown_escaped(
    app: App, client: TestClient, officer: str
) -> None:
    text = '<script>alert("x")</script>山洪'
    preview = await client.post("/respond/preview", data={**MANUAL, "text": text, "csrf": officer})
    html = await preview.text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    incident_id = await open_manual(client, officer, text=text)
    page = await client.get(f"/incidents/{incident_id}")
    assert "<script>alert" not in await page.text()
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


async def test_an_unknown_region_is_refused_and_nothing_opens(
    app: App, client: TestClient, officer: str
) -> None:
    resp = await client.post(
        "/respond/confirm", data={**MANUAL, "region": "449977", "csrf": officer}
    )
    assert resp.status == 400 and "未知区域" in await resp.text()
    assert await app.store.open_incidents() == []


async def test_a_second_response_for_the_same_hazard_and_region_is_refused(
    app: App, client: TestClient, officer: str
) -> None:
    await open_manual(client, officer)
    resp = await client.post("/respond/confirm", data={**MANUAL, "csrf": officer})
    assert resp.status == 400 and "已有进行中的响应" in await resp.text()
    assert len(await app.store.open_incidents()) == 1


async def test_a_phone_confirmation_is_recorded_with_the_officers_name(
    app: App, client: TestClient, officer: str
) -> None:
    incident_id = await open_manual(client, officer)
    target = next(r for r in await app.store.requests_of(incident_id) if r.responder_key == "V01")
    form = {"csrf": officer, "request_id": str(target.id), "note": "电话联系"}
    resp = await client.post(f"/incidents/{incident_id}/phone-ack", data=form)
    assert resp.status == 200
    confirmed = await app.store.request(target.id)
    assert confirmed is not None and confirmed.status == "confirmed"
    acks = await ConsoleStore(app.store.engine).acks_of(incident_id)
    assert [a.path for a in acks] == ["duty_officer"]
    log = await ConsoleStore(app.store.engine).audit_log(target=f"incident:{incident_id}")
    assert any(
        e.action == "phone_ack" and e.actor == "值班员张三" and "王小川" in e.detail for e in log
    )


async def test_a_phone_confirmation_for_another_incidents_request_is_refused(
    app: App, client: TestClient, officer: str
) -> None:
    first = await open_manual(client, officer)
    second = await open_manual(client, officer, hazard="台风")
    other = (await app.store.requests_of(second))[0]
    form = {"csrf": officer, "request_id": str(other.id)}
    resp = await client.post(f"/incidents/{first}/phone-ack", data=form)
    assert "无此叫应记录" in await resp.text()
    assert (await app.store.request(other.id)).status == "pending"  # type: ignore[union-attr]


async def test_remind_the_silent_asks_only_those_past_their_window(
    app: App, client: TestClient, officer: str, clock: Clock
) -> None:
    incident_id = await open_manual(client, officer)
    await app.pump()
    url = f"{PUBLIC_URL}/hooks/twilio/sms"
    form = {"From": app.people["V01"].phones[0], "Body": "1"}
    assert (
        await client.post("/hooks/twilio/sms", data=form, headers=sign(url, form))
    ).status == 200
    clock.advance(61)
    silent_page = await (await client.get(f"/incidents/{incident_id}?only=silent")).text()
    rows = re.findall(r'data-person="(\w+)" data-state="(\w+)"', silent_page)
    assert len(rows) == 9 and {state for _, state in rows} == {"silent"}
    resp = await client.post(f"/incidents/{incident_id}/remind", data={"csrf": officer})
    assert resp.status == 200 and "已安排提醒 9 人" in await resp.text()


async def _codes(app: App, incident_id: int, kind: str) -> dict[str, str]:
    """The reply code each queued message of ``kind`` (remind, repeat) tells its person."""
    query = sa.select(outbox.c.responder_key, outbox.c.body).where(
        outbox.c.incident_id == incident_id, outbox.c.key.startswith(f"{kind}:")
    )
    async with app.store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {key: re.findall(r'"(\d+)"', body)[0] for key, body in rows}


async def test_remind_the_silent_shows_the_code_the_ladders_reminder_shows(
    app: App, client: TestClient, officer: str, clock: Clock
) -> None:
    """Everyone has two incidents waiting (codes 11 and 12) but V02, who answered the
    second: V02's reminder says "1", everyone else's "11" — as the ladder's say."""
    first = await open_manual(client, officer)
    second = await open_manual(client, officer, hazard="台风")
    await confirm_by_link(app, second, "V02")
    clock.advance(61)
    await app.tick()
    ladder = await _codes(app, first, "repeat")
    resp = await client.post(f"/incidents/{first}/remind", data={"csrf": officer})
    assert "已安排提醒 10 人" in await resp.text()
    reminded = await _codes(app, first, "remind")
    assert reminded == ladder
    assert reminded["V02"] == "1" and {c for k, c in reminded.items() if k != "V02"} == {"11"}


async def test_remind_the_silent_after_an_upgrade_asks_each_person_once(
    app: App, client: TestClient, officer: str, clock: Clock
) -> None:
    """The requests an upgrade superseded are not silent: each person gets one reminder,
    for the request of the new level."""
    incident_id = await open_manual(client, officer)
    form = {"csrf": officer, "level": "II", "reason": "雨势加大", "second": "yes"}
    await client.post(f"/incidents/{incident_id}/upgrade", data=form)
    clock.advance(61)
    current = {
        r.responder_key: r.id
        for r in await app.store.requests_of(incident_id)
        if r.status != "superseded"
    }
    resp = await client.post(f"/incidents/{incident_id}/remind", data={"csrf": officer})
    assert f"已安排提醒 {len(current)} 人" in await resp.text()
    query = sa.select(outbox.c.responder_key, outbox.c.ack_token).where(
        outbox.c.key.startswith("remind:")
    )
    async with app.store.engine.connect() as conn:
        tokens = dict((await conn.execute(query)).all())
    assert {k: links.verify(t, app.link_secret) for k, t in tokens.items()} == current


async def test_upgrade_and_lift_by_hand_need_a_reason_and_are_audited(
    app: App, client: TestClient, officer: str
) -> None:
    incident_id = await open_manual(client, officer)
    no_reason = await client.post(f"/incidents/{incident_id}/lift", data={"csrf": officer})
    assert "请填写原因" in await no_reason.text()
    form = {"csrf": officer, "level": "II", "reason": "雨势加大", "second": "yes"}
    await client.post(f"/incidents/{incident_id}/upgrade", data=form)
    assert (await app.store.incident(incident_id)).level == Level.II  # type: ignore[union-attr]
    lifted = await client.post(
        f"/incidents/{incident_id}/lift", data={"csrf": officer, "reason": "雨停"}
    )
    assert "响应已解除" in await lifted.text()
    assert (await app.store.incident(incident_id)).status == "lifted"  # type: ignore[union-attr]
    assert {"upgrade", "lift"} <= set(await _actions(app))


async def test_the_after_action_csv_lists_everyone_asked(
    app: App, client: TestClient, officer: str
) -> None:
    incident_id = await open_manual(client, officer)
    resp = await client.get(f"/incidents/{incident_id}/export.csv")
    rows = list(csv.DictReader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert len(rows) == 10 and {r["state"] for r in rows} == {"pending"}
    assert {r["tier"] for r in rows} == {"county", "township", "village"}


async def test_the_reference_pages_show_feeds_rosters_and_who_is_on_duty(
    app: App, client: TestClient, officer: str
) -> None:
    feeds = await (await client.get("/feeds")).text()
    assert "示例县气象台 demo CAP" in feeds
    rosters = await (await client.get("/rosters")).text()
    assert "12 人" in rosters and "无导入错误" in rosters
    duty = await (await client.get("/duty")).text()
    assert "周值班(示例)" in duty and "+8617000000900" not in duty


async def _next_event(resp: Any) -> str:
    """The data of the next ``board`` event on a server-sent event stream (10 s at most)."""
    async with asyncio.timeout(10):
        return await _read_event(resp)


async def _read_event(resp: Any) -> str:
    lines: list[str] = []
    while True:
        line = (await resp.content.readline()).decode()
        if line.startswith("data: "):
            lines.append(line[6:])
        elif line == "\n" and lines:
            return "".join(lines)


async def test_the_board_stream_sends_the_redrawn_board_when_someone_confirms(
    app: App, client: TestClient, officer: str
) -> None:
    incident_id = await open_manual(client, officer)
    stream = await client.get(
        f"/incidents/{incident_id}/events", headers={"Accept": "text/event-stream"}
    )
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    first = await _next_event(stream)
    assert '"V01\\" data-state=\\"pending' in first
    target = next(r for r in await app.store.requests_of(incident_id) if r.responder_key == "V01")
    await app.link_ack(target.id)
    second = await _next_event(stream)
    assert '"V01\\" data-state=\\"confirmed' in second
    stream.close()


async def test_the_board_stream_refuses_a_visitor_without_a_session(
    app: App, client: TestClient, officer: str
) -> None:
    incident_id = await open_manual(client, officer)
    client.session.cookie_jar.clear()
    resp = await client.get(
        f"/incidents/{incident_id}/events", headers={"Accept": "text/event-stream"}
    )
    assert resp.status == 401


async def test_the_drill_report_lists_only_drills_with_their_outcome(
    app: App, client: TestClient, officer: str
) -> None:
    drill = await open_manual(client, officer, drill="on")
    await open_manual(client, officer, hazard="台风")
    target = next(r for r in await app.store.requests_of(drill) if r.responder_key == "V01")
    await app.link_ack(target.id)
    resp = await client.get("/exports/incidents.csv?drill=1")
    rows = list(csv.DictReader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert [(r["incident"], r["drill"], r["asked"], r["confirmed"]) for r in rows] == [
        (str(drill), "True", "10", "1")
    ]
    everything = await client.get("/exports/incidents.csv")
    assert len((await everything.read()).decode("utf-8-sig").strip().splitlines()) == 3


def _region_row(page: str, code: str) -> dict[str, str]:
    row = re.search(rf'<tr data-region="{code}">(.*?)</tr>', page, re.S)
    assert row, f"no row for region {code}"
    cells = dict(re.findall(r'data-state="(\w+)">(\d+)<', row.group(1)))
    cells["total"] = re.search(r"</th><td>(\d+)</td>", row.group(1)).group(1)  # type: ignore[union-attr]
    return cells


async def test_the_board_counts_each_region_and_the_stream_redraws_the_counts(
    app: App, client: TestClient, officer: str
) -> None:
    incident_id = await open_manual(client, officer)
    page = await (await client.get(f"/incidents/{incident_id}")).text()
    assert _region_row(page, "449901") == {
        "total": "2",
        "confirmed": "0",
        "late": "0",
        "pending": "2",
        "silent": "0",
        "unreachable": "0",
    }
    assert "一镇南村" in page.split('data-region="449901001001"')[1].split("</tr>")[0]
    stream = await client.get(
        f"/incidents/{incident_id}/events", headers={"Accept": "text/event-stream"}
    )
    await _next_event(stream)
    target = next(r for r in await app.store.requests_of(incident_id) if r.responder_key == "V01")
    await app.link_ack(target.id)
    redrawn = json.loads(await _next_event(stream))["html"]
    village = _region_row(redrawn, "449901001001")
    assert (village["total"], village["confirmed"], village["pending"]) == ("1", "1", "0")
    stream.close()


async def test_the_rosters_page_lists_a_bad_rosters_errors_by_file_and_line(
    app: App, client: TestClient, officer: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad_roster.csv"
    bad.write_text(
        "编号,姓名,层级,行政区划代码,手机号码\n"
        "V09,测试甲,村,449901001001,12345\n"
        "V10,测试乙,村,449901009001,+8617000000499\n",
        encoding="utf-8",
    )
    app.settings = app.settings.model_copy(update={"roster": bad})
    page = html.unescape(await (await client.get("/rosters")).text())
    assert "bad_roster.csv:2: " in page
    # only the region tree knows this well-formed code names no village of the demo
    not_in_tree = "行政区划代码/region_code '449901009001' is not in the region tree"
    assert f"bad_roster.csv:3: {not_in_tree}" in page
    assert str(tmp_path) not in page
    bad.write_text(
        "编号,姓名,层级,行政区划代码,手机号码\nV09,测试甲,村,449901001001,+8617000000499\n"
    )
    assert "无导入错误" in await (await client.get("/rosters")).text()


async def test_a_hand_upgrade_to_level_ii_asks_for_a_second_confirmation_first(
    app: App, client: TestClient, officer: str
) -> None:
    incident_id = await open_manual(client, officer)
    form = {"csrf": officer, "level": "II", "reason": "雨势加大"}
    first = await client.post(f"/incidents/{incident_id}/upgrade", data=form)
    page = await first.text()
    # Level Ⅱ reaches every tier of the demo: 11 people besides the duty officer
    assert first.status == 200 and "二次确认：提升至Ⅱ级响应" in page and "重新叫应 11 人" in page
    assert (await app.store.incident(incident_id)).level == Level.III  # type: ignore[union-attr]
    assert "upgrade" not in await _actions(app)
    again = await client.post(f"/incidents/{incident_id}/upgrade", data={**form, "second": "yes"})
    assert "响应已提升" in await again.text()
    assert (await app.store.incident(incident_id)).level == Level.II  # type: ignore[union-attr]


async def test_a_second_confirmation_is_not_shown_for_an_upgrade_that_cannot_happen(
    app: App, client: TestClient, officer: str
) -> None:
    incident_id = await open_manual(client, officer)
    form = {"csrf": officer, "level": "II", "reason": ""}
    resp = await client.post(f"/incidents/{incident_id}/upgrade", data=form)
    assert "请填写原因" in await resp.text() and "二次确认" not in await resp.text()


async def test_in_english_errors_hazards_templates_and_channels_are_english(
    app: App, client: TestClient, officer: str
) -> None:
    await client.get("/lang/en")
    form = await (await client.get("/respond")).text()
    assert 'value="山洪" label="flash flood"' in form
    assert ">Transfer: start the response and move people out of danger now<" in form
    refused = await client.post("/respond/preview", data={**MANUAL, "hazard": "", "csrf": officer})
    assert "Give the hazard (at most 50 characters)." in await refused.text()
    preview = await (await client.post("/respond/preview", data={**MANUAL, "csrf": officer})).text()
    assert "<td>SMS (Twilio)</td>" in preview and "ask to confirm" in preview
    incident_id = await open_manual(client, officer)
    back = await client.post(f"/incidents/{incident_id}/lift", data={"csrf": officer})
    assert "Give a reason." in await back.text()


async def test_the_incident_page_shows_only_known_error_codes_never_the_querys_text(
    app: App, client: TestClient, officer: str
) -> None:
    incident_id = await open_manual(client, officer)
    query = "?error=请拨打+400-000-0000&notice=reminded:x"
    page = await (await client.get(f"/incidents/{incident_id}{query}")).text()
    # (the language switch keeps the whole address, percent-encoded, in its link)
    assert "请拨打" not in page and 'role="alert"' not in page and 'role="status"' not in page
    known = await (await client.get(f"/incidents/{incident_id}?error=reason")).text()
    assert "请填写原因。" in known


async def test_a_phone_confirmation_on_a_lifted_incident_is_refused(
    app: App, client: TestClient, officer: str
) -> None:
    incident_id = await open_manual(client, officer)
    target = (await app.store.requests_of(incident_id))[0]
    await client.post(f"/incidents/{incident_id}/lift", data={"csrf": officer, "reason": "雨停"})
    form = {"csrf": officer, "request_id": str(target.id)}
    resp = await client.post(f"/incidents/{incident_id}/phone-ack", data=form)
    assert "该响应已解除。" in await resp.text()
    assert (await app.store.request(target.id)).confirmed_at is None  # type: ignore[union-attr]
    assert "phone_ack" not in await _actions(app)


async def test_a_phone_confirmation_with_nothing_to_confirm_is_refused_not_called_a_repeat(
    app: App, client: TestClient, officer: str
) -> None:
    incident_id = await open_manual(client, officer)
    old = next(r for r in await app.store.requests_of(incident_id) if r.responder_key == "V01")
    # an upgrade to a level that no longer reaches villages supersedes V01's request
    policy = {**app.settings.policy, "Ⅱ": {**app.settings.policy["Ⅱ"]}}
    del policy["Ⅱ"][Tier.VILLAGE]
    app.settings = app.settings.model_copy(update={"policy": policy})
    upgrade = {"csrf": officer, "level": "II", "reason": "雨势加大", "second": "yes"}
    await client.post(f"/incidents/{incident_id}/upgrade", data=upgrade)
    form = {"csrf": officer, "request_id": str(old.id)}
    resp = await client.post(f"/incidents/{incident_id}/phone-ack", data=form)
    assert "未登记：此人没有待确认的叫应请求。" in await resp.text()
    assert not {"phone_ack", "phone_ack_duplicate"} & set(await _actions(app))


async def test_the_board_shows_persons_an_upgrade_no_longer_asks_apart_not_silent(
    app: App, client: TestClient, officer: str, clock: Clock
) -> None:
    incident_id = await open_manual(client, officer)
    policy = {**app.settings.policy, "Ⅱ": {**app.settings.policy["Ⅱ"]}}
    del policy["Ⅱ"][Tier.VILLAGE]  # Ⅱ no longer reaches villages
    app.settings = app.settings.model_copy(update={"policy": policy})
    upgrade = {"csrf": officer, "level": "II", "reason": "雨势加大", "second": "yes"}
    await client.post(f"/incidents/{incident_id}/upgrade", data=upgrade)
    clock.advance(3600)
    page = await (await client.get(f"/incidents/{incident_id}")).text()
    rows = dict(re.findall(r'data-person="(\w+)" data-state="(\w+)"', page))
    assert {k for k, s in rows.items() if s == "no_longer_asked"} == {
        "V01", "V02", "V03", "V04", "V05"
    }  # fmt: skip
    assert 'data-tier="village"' in page and "5 人不再需要确认" in page
    v01 = page[page.index('data-person="V01"') :].split("</tr>", 1)[0]
    assert "不再需要" in v01 and "phone-ack" not in v01


def _csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def test_every_csv_export_keeps_formulas_typed_into_cells_as_text(
    app: App, client: TestClient, officer: str
) -> None:
    evil_name = '=HYPERLINK("http://example.invalid","点我")'
    app.people["V01"] = dataclasses.replace(app.people["V01"], name=evil_name)
    incident_id = await open_manual(client, officer, hazard="+1+2暴雨", drill="on")
    people = _csv(await (await client.get(f"/incidents/{incident_id}/export.csv")).read())
    assert {r["hazard"] for r in people} == {"'+1+2暴雨"}
    assert "'" + evil_name in {r["name"] for r in people}
    for url in ("/exports/incidents.csv", "/exports/incidents.csv?drill=1"):
        (row,) = _csv(await (await client.get(url)).read())
        assert row["hazard"] == "'+1+2暴雨"


async def test_streams_of_one_board_share_one_render_per_change(
    app: App, client: TestClient, officer: str
) -> None:
    boards = client.server.app[BOARDS]
    boards.poll_s = 600.0  # only what happens redraws, not the clock
    incident_id = await open_manual(client, officer)
    url = f"/incidents/{incident_id}/events"
    streams = [await client.get(url, headers={"Accept": "text/event-stream"}) for _ in range(3)]
    first = [json.loads(await _next_event(s))["html"] for s in streams]
    assert len(set(first)) == 1 and boards.renders == 1
    assert f'name="csrf" value="{officer}"' in first[0] and CSRF_SLOT not in first[0]
    target = next(r for r in await app.store.requests_of(incident_id) if r.responder_key == "V01")
    await app.link_ack(target.id)
    for s in streams:
        board = json.loads(await _next_event(s))["html"]
        assert 'data-person="V01" data-state="confirmed"' in board
    assert boards.renders == 2
    for s in streams:
        s.close()
