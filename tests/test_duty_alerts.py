"""The duty officer on shift (值班员) and the leader on shift (带班领导): who they are for
a region, the operational alerts the officer receives (opened, upgraded, lifted,
unreachable — once each), the rota reloaded when its file changes, and `warnbot status`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.conftest import DEMO, ROOT, Clock
from warnbot.app import App
from warnbot.errors import SendError
from warnbot.evaluate import Transition
from warnbot.fakes.twilio import FakeTwilio
from warnbot.ingest import cap
from warnbot.model import Level
from warnbot.status import duty_lines
from warnbot.store import OutboxRow

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()
ROTA = ROOT / "config" / "rosters" / "demo_rota.csv"  # T0 is 14:15 on 2026-08-15 in Shanghai


def _with_rota(app: App, tmp_path: Path) -> Path:
    path = tmp_path / "rota.csv"
    shutil.copy(ROTA, path)
    app.settings = app.settings.model_copy(update={"rota": path})
    app.load_rota(path)
    return path


def _keys(people: tuple[object, ...]) -> list[str]:
    return [p.key for p in people]


async def _alerts(app: App, fake: FakeTwilio, key: str) -> list[str]:
    while await app.pump():
        pass
    phone = app.people[key].phones[0]
    return [m.body or "" for m in fake.messages if m.to == phone and "值班提示" in (m.body or "")]


async def test_on_shift_names_the_duty_officer_and_the_leader_of_a_region(
    app: App, tmp_path: Path
) -> None:
    _with_rota(app, tmp_path)
    county = app.on_shift("449901")  # its own day shift; the leader from the city above
    assert (_keys(county.duty_officers), _keys(county.leaders)) == (["X02"], ["C01"])
    village = app.on_shift("449901002001")  # no shift of its own: the county's
    assert _keys(village.duty_officers) == ["X02"]
    assert "值班员 duty officer: 黄海涛(示例)；带班领导 leader on shift: 林晓晴(示例)" in (
        county.line()
    )


async def test_without_a_rota_the_rosters_duty_officers_are_on_shift(app: App) -> None:
    found = app.on_shift("449901")
    assert (_keys(found.duty_officers), found.leaders) == (["D01"], ())


async def test_the_officer_on_shift_hears_of_open_upgrade_and_lift_once_each(
    app: App, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    _with_rota(app, tmp_path)
    await app.ingest("demo", cap.parse(FEED))
    assert await app.alert_duty(1, "opened", asked=11) == 1  # decided again: sent once
    upgrade = Transition("upgrade", "暴雨@449901", "暴雨", "449901", Level.I, "红色", "t", 1)
    await app.apply(upgrade, None, source="test")
    lift = Transition("lift", "暴雨@449901", "暴雨", "449901", Level.I, "", "t", 1)
    await app.apply(lift, None, source="test")
    alerts = await _alerts(app, fake_twilio, "X02")
    assert [a.split("】")[0] for a in alerts] == [
        "【值班提示·启动响应",
        "【值班提示·提升响应",
        "【值班提示·解除响应",
    ]
    assert "Ⅱ级响应已启动（449901），已向11名责任人发出叫应" in alerts[0]
    assert "提升至Ⅰ级" in alerts[1]
    assert await _alerts(app, fake_twilio, "D01") == []  # the city's officer: not their region


async def test_a_person_whose_every_address_failed_is_reported_once(
    app: App, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    await app.ingest("demo", cap.parse(FEED))
    row = OutboxRow(1, "request:9:twilio", "twilio", app.people["V05"].phones[0], "x", 1, "V05",
                    1, None, None, clock())  # fmt: skip
    await app._failover(row, SendError("undelivered 30006", retryable=False, code="30006"))
    steps = await app.tick()
    assert [(s.kind, s.responder_key) for s in steps] == [("unreachable", "V05")]
    assert await app.tick() == []
    (alert,) = [a for a in await _alerts(app, fake_twilio, "D01") if "无法联系" in a]
    assert "钱大勇(示例)(村级)" in alert


async def test_the_ladder_giving_up_tells_the_officer_in_one_message(
    app: App, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    await app.ingest("demo", cap.parse(FEED))
    clock.advance(86_400)
    gone = [s for s in await app.tick() if s.kind == "unreachable"]
    assert len(gone) == 11
    (alert,) = [a for a in await _alerts(app, fake_twilio, "D01") if "无法联系" in a]
    assert "以下11人" in alert


async def test_the_rota_is_reloaded_when_its_file_changes_and_a_bad_one_is_refused(
    app: App, tmp_path: Path
) -> None:
    path = _with_rota(app, tmp_path)
    assert await app.refresh() is False and _keys(app.on_shift("449901").duty_officers) == ["X02"]
    text = path.read_text(encoding="utf-8").replace("449901,值班员,X02", "449901,值班员,X01")
    text = text.replace("20:30,08:30,449901,值班员,X01", "20:30,08:30,449901,值班员,X02")
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(1, path.stat().st_mtime_ns + 1_000_000_000))
    await app.refresh()
    assert _keys(app.on_shift("449901").duty_officers) == ["X01"]
    path.write_text(text + "2026-08-15,09:00,10:00,449901,值班员,NOBODY,,,\n", encoding="utf-8")
    os.utime(path, ns=(1, path.stat().st_mtime_ns + 2_000_000_000))
    await app.refresh()  # logged, not raised: the daemon keeps the rota it has
    assert _keys(app.on_shift("449901").duty_officers) == ["X01"]


async def test_status_shows_who_is_on_duty_for_the_office_and_each_incident(
    app: App, tmp_path: Path
) -> None:
    path = _with_rota(app, tmp_path)
    settings = app.settings.model_copy(update={"rota": path})
    await app.ingest("demo", cap.parse(FEED))
    incident = await app.store.incident(1)
    assert incident is not None
    lines = await duty_lines(app.store, settings, app.clock(), app.regions, [incident])
    assert lines[0] == "当前值班 on duty now:"
    assert any(line.startswith("  449900 值班员 duty officer: 周值班(示例)") for line in lines)
    assert any(line.startswith("  449901 值班员 duty officer: 黄海涛(示例)") for line in lines)
