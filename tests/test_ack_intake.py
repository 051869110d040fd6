"""The one ack intake through App, on both engines: every path, muster arrivals, duty
officers' entries, delivery reports, and the texts kept verbatim for reports back."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import ROOT, Clock
from warnbot import board
from warnbot.app import App
from warnbot.errors import SendError
from warnbot.evaluate import Transition
from warnbot.fakes.twilio import FakeTwilio
from warnbot.model import AckPath, Level, Tier
from warnbot.settings import TierPolicySettings
from warnbot.store import OutboxRow, Store

FEED = (ROOT / "config" / "demo" / "feed" / "rainstorm_orange.xml").read_bytes()


async def opened(app: App, key: str = "暴雨@449901", level: Level = Level.II) -> int:
    t = Transition("open", key, key.split("@")[0], "449901", level, f"{key} 预警", "test")
    await app.apply(t, None, source="test")
    (incident,) = [i for i, _ in await app.store.open_incidents() if i.key == key]
    return incident.id


def phone(app: App, key: str) -> str:
    return app.people[key].phones[0]


async def test_an_sms_reply_is_kept_verbatim_and_attributed_to_its_path(app: App) -> None:
    incident = await opened(app)
    assert "已确认收到" in await app.sms_reply(phone(app, "V01"), "1 已转移12户30人")
    assert "已确认收到" in await app.sms_reply(phone(app, "V01"), "1 又转移3户")  # a repeat
    answers = [a for a in await app.store.answers_of(incident) if a.responder_key == "V01"]
    assert [(a.kind, a.path, a.text) for a in answers] == [
        ("confirm", "sms", "1 已转移12户30人"),
        ("again", "sms", "1 又转移3户"),
    ]


async def test_with_two_open_requests_a_bare_answer_is_told_the_open_codes(app: App) -> None:
    await opened(app)
    await opened(app, "山洪@449901")
    answer = await app.sms_reply(phone(app, "V02"), "收到")
    assert '"11"' in answer and '"12"' in answer and "山洪" in answer
    assert "已确认收到" in await app.sms_reply(phone(app, "V02"), "12")
    assert "已确认收到" in await app.sms_reply(phone(app, "V02"), "ok")  # only one open now


async def test_with_two_open_requests_a_bare_1_confirms_nothing_and_lists_the_codes(
    app: App, fake_twilio: FakeTwilio
) -> None:
    """The first ask said "reply 1" (the only open request then); the second, asked while
    the first is open, shows its own code. A bare "1" now guesses neither."""
    first = await opened(app)
    second = await opened(app, "山洪@449901")
    await app.pump()
    asks = [m.body or "" for m in fake_twilio.messages if m.to == phone(app, "V02")]
    assert ['请回复"1"' in a for a in asks] == [True, False] and '请回复"12"' in asks[1]
    for text in ("1", "1 已转移2户5人"):
        answer = await app.sms_reply(phone(app, "V02"), text)
        assert '"11"' in answer and '"12"' in answer and "山洪" in answer
    states = {
        r.incident_id: r.status
        for i in (first, second)
        for r in await app.store.requests_of(i)
        if r.responder_key == "V02"
    }
    assert states == {first: "pending", second: "pending"}
    assert await app.store.reports_of(first) == await app.store.reports_of(second) == []
    assert "已确认收到" in await app.sms_reply(phone(app, "V02"), "11 已转移2户5人")
    (filed,) = await app.store.reports_of(first)
    assert filed.report.people_moved == 5


@pytest.mark.parametrize("path", [AckPath.LINK, AckPath.KEYPAD, AckPath.CHAT])
async def test_signed_tokens_confirm_once_by_their_path(app: App, path: AckPath) -> None:
    incident = await opened(app)
    (req,) = await app.store.open_requests_for("T01")
    first = await app.token_ack(app.token(req.id), path)
    again = await app.token_ack(app.token(req.id), path)
    assert first is not None and first.kind == "confirmed"
    assert again is not None and again.kind == "duplicate"
    assert await app.token_ack(app.token(req.id) + "x", path) is None  # forged
    kinds = [(a.kind, a.path) for a in await app.store.answers_of(incident)]
    assert kinds == [("confirm", path.value), ("again", path.value)]


async def test_a_duty_officers_entry_names_them_in_the_audit_trail(app: App, clock: Clock) -> None:
    incident = await opened(app)
    clock.advance(3600)
    outcome = await app.duty_ack(incident, "V03", "值班员王五", note="电话联系，已收到")
    assert outcome.kind == "confirmed" and outcome.result is not None and outcome.result.late
    assert (await app.duty_ack(incident, "V03", "值班员赵六")).kind == "duplicate"
    trail = [(a.kind, a.path, a.by_name, a.text) for a in await app.store.answers_of(incident)]
    assert trail == [
        ("confirm", "duty_officer", "值班员王五", "电话联系，已收到"),
        ("again", "duty_officer", "值班员赵六", ""),
    ]
    with pytest.raises(ValueError, match="name"):
        await app.duty_ack(incident, "V03", "  ")
    assert (await app.duty_ack(incident, "nobody", "值班员王五")).kind == "unknown"


async def test_a_duty_officers_note_with_figures_is_filed_as_a_report_back(app: App) -> None:
    """A phone call's "已转移5户12人" is summed like the same words by SMS; a note with
    nothing to read is kept in the audit trail only."""
    incident = await opened(app)
    await app.duty_ack(incident, "V03", "值班员王五", note="电话确认")
    assert await app.store.reports_of(incident) == []
    await app.duty_ack(incident, "V03", "值班员王五", note="电话告知已转移5户12人")
    (filed,) = await app.store.reports_of(incident)
    assert (filed.path, filed.responder_key) == ("duty_officer", "V03")
    assert filed.report.people_moved == 12
    totals = await app.report_totals(incident)
    assert totals["449901"].total.households_moved == 5 and totals["449901"].name


async def test_a_delivery_report_marks_the_ask_delivered_but_not_a_report_about_others(
    app: App, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    incident = await opened(app)
    await app.pump()
    sms = {m.to: m for m in fake_twilio.messages}
    await app.delivery_report(sms[phone(app, "V03")].sid, "delivered", None)
    await app.delivery_report(sms[phone(app, "V03")].sid, "sent", None)  # stale: ignored
    states = {r.responder_key: r for r in await app.store.requests_of(incident)}
    assert states["V03"].status == "delivered" and states["V03"].delivered_at == clock()
    assert states["T02"].status == "pending"
    clock.advance(7)  # the window and the reminder: T02 is told V03 is silent
    await app.tick()
    await app.pump()
    (report,) = [
        m
        for m in fake_twilio.messages
        if "叫应未应答" in (m.body or "") and m.to == phone(app, "T02")
    ]
    await app.delivery_report(report.sid, "delivered", None)
    states = {r.responder_key: r for r in await app.store.requests_of(incident)}
    assert states["T02"].delivered_at is None


async def test_every_address_failing_makes_the_person_unreachable_at_once(
    app: App, clock: Clock
) -> None:
    incident = await opened(app)
    row = OutboxRow(1, "request:9:twilio", "twilio", phone(app, "V05"), "x", incident, "V05", 1,
                    None, None, clock())  # fmt: skip
    await app._failover(row, SendError("undelivered 30006", retryable=False, code="30006"))
    (req,) = [r for r in await app.store.requests_of(incident) if r.responder_key == "V05"]
    assert req.status == "unreachable" and req.unreachable_at == clock()
    assert "已确认收到" in await app.sms_reply(phone(app, "V05"), "1")  # late, never lost
    (req,) = [r for r in await app.store.requests_of(incident) if r.responder_key == "V05"]
    assert board.state(req, clock()) == "confirmed"


# --- muster --------------------------------------------------------------------------------


def with_muster(app: App) -> None:
    village = TierPolicySettings(ack_window_s=600, muster_s=1800, muster_roles=("grid_worker",))
    policy = dict(app.settings.policy)
    policy["Ⅱ"] = {**policy["Ⅱ"], Tier.VILLAGE: village}
    app.settings = app.settings.model_copy(update={"policy": policy})


async def test_a_muster_asks_to_arrive_and_the_board_follows_arrivals(
    app: App, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    with_muster(app)
    incident = await opened(app)
    await app.pump()
    bodies = {m.to: m.body or "" for m in fake_twilio.messages}
    assert "30分钟内到岗" in bodies[phone(app, "V01")]  # grid workers muster
    assert "到岗" not in bodies[phone(app, "V02")]  # first responders do not
    confirmed = await app.sms_reply(phone(app, "V01"), "收到")
    assert '回复"到岗"' in confirmed
    clock.advance(900)
    assert "已登记到岗" in await app.sms_reply(phone(app, "V04"), "到岗")  # arrives unasked
    (tier,) = board.muster(await app.store.requests_of(incident))
    assert (tier.on_the_way, tier.arrived) == (("V01",), ("V04",))
    clock.advance(1200)  # past the 30 minutes
    assert "超过集结时限" in await app.sms_reply(phone(app, "V01"), "2")
    (tier,) = board.muster(await app.store.requests_of(incident))
    assert (tier.arrived, tier.arrived_late, tier.on_the_way) == (("V04",), ("V01",), ())
    kinds = [(a.responder_key, a.kind) for a in await app.store.answers_of(incident)]
    assert ("V01", "arrive") in kinds and ("V04", "arrive") in kinds


async def test_on_the_way_past_the_muster_deadline_the_superior_is_told_once(
    app: App, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    with_muster(app)
    incident = await opened(app)
    clock.advance(60)
    await app.sms_reply(phone(app, "V01"), "收到")  # on the way …
    await app.sms_reply(phone(app, "V04"), "收到")
    clock.advance(600)
    await app.sms_reply(phone(app, "V04"), "到岗")  # … V04 arrives in time
    (tier,) = await app.muster_board(incident)
    assert (tier.on_the_way, tier.arrived) == (("V01",), ("V04",))
    clock.now = tier.deadline - timedelta(seconds=1)
    assert [s for s in await app.tick() if s.kind == "muster"] == []
    clock.advance(1)
    (step,) = [s for s in await app.tick() if s.kind == "muster"]
    assert (step.responder_key, step.target_key) == ("V01", "T01")
    assert [s for s in await app.tick() if s.kind == "muster"] == []  # once
    await app.pump()
    (told,) = [m.body or "" for m in fake_twilio.messages if "集结超时" in (m.body or "")]
    assert "王小川(示例)(村级)" in told and "孙秀英" not in told
    assert [m.to for m in fake_twilio.messages if "集结超时" in (m.body or "")] == [
        phone(app, "T01")
    ]


async def test_a_late_city_member_with_no_superior_is_reported_to_the_duty_officer(
    app: App, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    city = TierPolicySettings(ack_window_s=600, muster_s=1800, muster_roles=("administrative",))
    policy = dict(app.settings.policy)
    policy["Ⅱ"] = {**policy["Ⅱ"], Tier.CITY: city}
    app.settings = app.settings.model_copy(update={"policy": policy})
    await opened(app)
    await app.sms_reply(phone(app, "C01"), "收到")
    clock.advance(1800)
    (step,) = [s for s in await app.tick() if s.kind == "muster"]
    assert (step.responder_key, step.target_key) == ("C01", None)
    await app.pump()
    (told,) = [m for m in fake_twilio.messages if "集结超时" in (m.body or "")]
    assert told.to == phone(app, "D01") and "林晓晴" in (told.body or "")


async def test_with_two_musters_a_code_confirms_one_and_a_bare_2_reports_arrival(
    app: App,
) -> None:
    """No request has code 2 (codes start at 11): a bare "2" always says 到岗."""
    with_muster(app)
    first = await opened(app)
    second = await opened(app, "山洪@449901")
    assert "已确认收到" in await app.sms_reply(phone(app, "V01"), "12")
    (mine,) = [r for r in await app.store.requests_of(second) if r.responder_key == "V01"]
    assert mine.status == "confirmed" and mine.arrived_at is None
    (req,) = [r for r in await app.store.requests_of(first) if r.responder_key == "V01"]
    assert req.confirmed_at is None
    assert "已登记到岗" in await app.sms_reply(phone(app, "V01"), "2")
    (mine,) = [r for r in await app.store.requests_of(second) if r.responder_key == "V01"]
    assert mine.arrived_at is not None


# --- the command line ----------------------------------------------------------------------


async def test_warnbot_ack_records_a_phone_confirmation_by_a_named_duty_officer(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/w.db"
    store = Store.connect(url)
    await store.migrate()
    from tests.conftest import T0
    from tests.factories import delivery, incident, person

    made = await store.open_incident(incident(T0), None)
    await store.sync_roster([person("V09")])
    await store.add_requests(made.id, [delivery(person("V09"), T0)], T0, lambda r: [])
    await store.close()

    def ack(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "warnbot", "ack", "--incident", str(made.id), *args],
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "WARNBOT_DATABASE_URL": url},
            cwd=ROOT,
            timeout=60,
            check=False,
        )

    done = ack("--person", "V09", "--by", "值班员王五", "--note", "电话确认")
    assert done.returncode == 0, done.stderr
    assert "已登记确认 recorded" in done.stdout and "值班员王五" in done.stdout
    missing = ack("--person", "V99", "--by", "值班员王五")
    assert missing.returncode == 1 and "V99" in missing.stderr
    reported = ack("--person", "V09", "--by", "值班员王五", "--note", "已转移3户7人")
    assert reported.returncode == 0, reported.stderr
    store = Store.connect(url)
    answer, _ = await store.answers_of(made.id)
    (filed,) = await store.reports_of(made.id)
    await store.close()
    assert (answer.path, answer.by_name, answer.text) == ("duty_officer", "值班员王五", "电话确认")
    assert (filed.path, filed.report.people_moved) == ("duty_officer", 7)
    store = Store.connect(url)
    await store.lift(made.id, T0)
    await store.close()
    late = ack("--person", "V09", "--by", "值班员王五", "--note", "补登")
    assert late.returncode == 1 and "已解除 lifted" in late.stderr  # as the console refuses it
