"""Drills (演练): marking, no public reach, unannounced plans claimed once, the drill report."""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT, T0
from tests.factories import delivery, incident, person
from warnbot import drillcli, drillreport, drills
from warnbot.drillreport import Step as ReportStep
from warnbot.model import Level, Message, Request, Responder, Step, Tier
from warnbot.render import Renderer
from warnbot.store import Store


@pytest.fixture
def rstore(store: Store) -> Store:
    return Store(store.engine)


DRILL = dataclasses.replace(incident(T0), id=7, drill=True)


def named(key: str, tier: Tier, name: str, region: str = "449901001001") -> Responder:
    return dataclasses.replace(person(key, tier, region), name=name)


# --- marking and public reach ---------------------------------------------------------------


def test_every_drill_message_starts_with_the_drill_mark_once() -> None:
    assert drills.mark("【Ⅱ级响应】示例县暴雨") == "【演练】【Ⅱ级响应】示例县暴雨"
    assert drills.mark(drills.mark("正文")) == "【演练】正文"
    assert drills.mark("正文", drill=False) == "正文"


def test_the_template_filter_marks_only_drill_incidents() -> None:
    renderer = Renderer()
    drills.install(renderer.env)
    template = renderer.env.from_string("{{ '【Ⅱ级响应】' | drill(incident) }}")
    assert template.render(incident=DRILL) == "【演练】【Ⅱ级响应】"
    real = dataclasses.replace(DRILL, drill=False)
    assert template.render(incident=real) == "【Ⅱ级响应】"


def test_a_drill_never_reaches_the_public() -> None:
    assert not drills.reaches_public(DRILL)
    assert drills.reaches_public(dataclasses.replace(DRILL, drill=False))


# --- plans and the moment they fire ---------------------------------------------------------

START = datetime(2026, 9, 1, 0, 0, tzinfo=UTC)
END = START + timedelta(hours=10)


def plan(seed: int = 42, start: datetime = START, end: datetime = END) -> drills.DrillPlan:
    return drills.scheduled(
        start, end, "暴雨", "示例县暴雨橙色预警（演练）", Level.II, ["449901"], seed
    )


@given(
    seed=st.integers(0, 2**62),
    start=st.datetimes(datetime(2020, 1, 1), datetime(2040, 1, 1), timezones=st.just(UTC)),
    span_us=st.integers(0, 10**12),
)
def test_the_moment_is_inside_the_window_and_the_same_for_the_same_seed(
    seed: int, start: datetime, span_us: int
) -> None:
    p = plan(seed, start, start + timedelta(microseconds=span_us))
    moment = drills.fire_at(p)
    assert p.window_start <= moment <= p.window_end
    assert drills.fire_at(dataclasses.replace(p)) == moment


def test_the_moment_is_spread_evenly_over_the_window() -> None:
    hours = [(drills.fire_at(plan(seed)) - START) // timedelta(hours=1) for seed in range(5000)]
    counts = [hours.count(h) for h in range(10)]
    assert all(400 <= c <= 600 for c in counts), counts  # 500 expected per hour


def test_a_plan_with_a_bad_window_or_region_is_refused() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        plan(start=END, end=START)
    with pytest.raises(ValueError, match="not administrative division codes: 99"):
        drills.scheduled(START, END, "暴雨", "x", Level.II, ["99"], 1)
    with pytest.raises(ValueError, match="time zone"):
        plan(start=START.replace(tzinfo=None))


def test_the_scenario_is_hidden_until_the_drill_starts() -> None:
    p = plan()
    before = drills.redacted(p, drills.fire_at(p) - timedelta(seconds=1))
    assert "暴雨" not in str(before.values()) and before["fire_at"] is None
    after = drills.redacted(p, drills.fire_at(p))
    assert (after["hazard"], after["level"]) == ("暴雨", "Ⅱ")


def test_a_fired_plan_opens_one_drill_incident_per_region() -> None:
    p = dataclasses.replace(plan(), id=3, regions=("449901", "449902000000"))
    opened = drills.drafts(p, DRILL.policy, T0)
    assert [(i.key, i.region_code, i.drill) for i in opened] == [
        ("演练:3:449901", "449901", True),
        ("演练:3:449902", "449902", True),
    ]


# --- plans in the store -------------------------------------------------------------------------


async def test_a_due_drill_is_claimed_by_exactly_one_of_several_processes(
    rstore: Store, db_url: str
) -> None:
    stored = [await rstore.schedule_drill(plan(seed), START) for seed in range(20)]
    due_at = max(drills.fire_at(p) for p in stored)
    others = [Store.connect(db_url) for _ in range(3)]
    try:
        claimers: list[Store] = [rstore, *others]
        rounds = await asyncio.gather(
            *(s.claim_due_drills(due_at, f"worker{i}") for i, s in enumerate(claimers * 3))
        )
    finally:
        for s in others:
            await s.close()
    claimed = sorted(p.id for got in rounds for p in got)
    assert claimed == sorted(p.id for p in stored)


async def test_only_drills_whose_moment_has_come_are_claimed(rstore: Store) -> None:
    early, late = plan(1), plan(2)
    first = await rstore.schedule_drill(early, START)
    second = await rstore.schedule_drill(late, START)
    moments = sorted([(drills.fire_at(early), first.id), (drills.fire_at(late), second.id)])
    got = await rstore.claim_due_drills(moments[0][0], "w")
    assert [p.id for p in got] == [moments[0][1]]
    assert got[0].status == "fired" and got[0].seed == moments[0][1] and got[0].hazard == "暴雨"
    assert await rstore.claim_due_drills(moments[0][0], "w") == []


async def test_a_claim_whose_process_died_is_claimed_again_after_the_lease(
    rstore: Store,
) -> None:
    p = await rstore.schedule_drill(plan(), START)
    at = drills.fire_at(p)
    assert [x.id for x in await rstore.claim_due_drills(at, "dies")] == [p.id]
    assert await rstore.claim_due_drills(at + timedelta(seconds=299), "w2") == []
    again = await rstore.claim_due_drills(at + timedelta(seconds=300), "w2")
    assert [x.id for x in again] == [p.id]
    await rstore.drill_fired(p.id, [11, 12])
    assert await rstore.claim_due_drills(at + timedelta(hours=1), "w3") == []
    assert (await rstore.drill_plans())[0].incident_ids == (11, 12)


async def test_a_cancelled_drill_never_fires(rstore: Store) -> None:
    p = await rstore.schedule_drill(plan(), START)
    assert await rstore.cancel_drill(p.id)
    assert not await rstore.cancel_drill(p.id)
    assert await rstore.claim_due_drills(END, "w") == []


# --- the drill report: a fixed timeline -----------------------------------------------------------


def _req(
    rid: int, key: str, tier: Tier, confirmed_min: float | None, window_min: int = 10
) -> Request:
    confirmed = None if confirmed_min is None else T0 + timedelta(minutes=confirmed_min)
    status = "pending" if confirmed is None else "confirmed"
    deadline = T0 + timedelta(minutes=window_min)
    return Request(rid, 7, key, tier, "1", status, T0, deadline, confirmed)


TIMELINE = [
    _req(1, "c1", Tier.COUNTY, 2),  # confirmed in 2 min
    _req(2, "t1", Tier.TOWNSHIP, 12),  # late, after a reminder
    _req(3, "t2", Tier.TOWNSHIP, None),  # silent: reminder, then the superior told
    _req(4, "v1", Tier.VILLAGE, 1),
    _req(5, "v2", Tier.VILLAGE, None),  # every number failed
    _req(6, "v3", Tier.VILLAGE, None, window_min=30),  # window still open
]
STEPS = [
    ReportStep("repeat:2:1", "repeat", T0 + timedelta(minutes=10), 2),
    ReportStep("repeat:3:1", "repeat", T0 + timedelta(minutes=10), 3),
    ReportStep("superior:3", "superior", T0 + timedelta(minutes=15), 3),
    ReportStep("notice:7:lift", "notice", T0 + timedelta(minutes=19), None),
]
PEOPLE = {
    k: named(k, t, n)
    for k, t, n in [
        ("c1", Tier.COUNTY, "县值班<script>"),
        ("t1", Tier.TOWNSHIP, "乡甲"),
        ("t2", Tier.TOWNSHIP, "乡乙"),
        ("v1", Tier.VILLAGE, "村甲"),
        ("v2", Tier.VILLAGE, "村乙"),
        ("v3", Tier.VILLAGE, "村丙"),
    ]
}


def _report() -> drillreport.DrillReport:
    now = T0 + timedelta(minutes=20)
    return drillreport.build(DRILL, TIMELINE, PEOPLE, STEPS, now, unreachable={"v2"})


def test_each_person_has_an_outcome_a_time_to_confirm_and_their_escalations() -> None:
    rows = {p.responder_key: p for p in _report().people}
    assert [(k, p.outcome, p.confirm_s) for k, p in rows.items()] == [
        ("c1", "confirmed", 120.0),
        ("t1", "late", 720.0),
        ("t2", "silent", None),
        ("v1", "confirmed", 60.0),
        ("v2", "unreachable", None),
        ("v3", "pending", None),
    ]
    assert rows["t2"].escalations == {"repeat": 1, "superior": 1}
    assert rows["t1"].escalations == {"repeat": 1} and rows["c1"].escalated == 0


def test_each_tier_is_summed_with_median_and_slowest_answer() -> None:
    report = _report()
    township = report.tiers[1]
    assert (township.tier, township.total, township.answered) == (Tier.TOWNSHIP, 2, 1)
    assert township.counts == {
        "confirmed": 0,
        "late": 1,
        "silent": 1,
        "unreachable": 0,
        "pending": 0,
    }
    assert township.escalations == {"repeat": 2, "superior": 1}
    village = report.tiers[2]
    assert (village.median_confirm_s, village.max_confirm_s) == (60.0, 60.0)
    assert report.total is not None and report.total.tier is None
    assert (report.total.total, report.total.answered, report.total.median_confirm_s) == (
        6,
        3,
        120.0,
    )
    assert report.other_steps == {"notice": 1}


def test_the_people_csv_has_one_row_per_person_under_a_bilingual_header() -> None:
    rows = list(csv.reader(io.StringIO(drillreport.people_csv(_report()))))
    assert rows[0][:3] == ["层级 tier", "编号 key", "姓名 name"]
    assert rows[2] == [
        "township",
        "t1",
        "乡甲",
        "449901001001",
        "2026-08-15T06:15:00+00:00",
        "2026-08-15T06:25:00+00:00",
        "2026-08-15T06:27:00+00:00",
        "720",
        "late",
        "1",  # reminders
        "0",  # voice calls
        "0",  # superior told
        "0",  # duty officer told
        "0",  # marked unreachable
        "0",  # late to muster
        "1",
    ]
    assert rows[0][9:] == [
        "重复提醒 reminders",
        "语音外呼 voice calls",
        "上报上级 superior told",
        "上报值班员 duty officer told",
        "标记无法联系 marked unreachable",
        "集结超时上报 late to muster, told",
        "升级合计 escalations",
    ]
    assert rows[3][9:] == ["1", "0", "1", "0", "0", "0", "2"]  # t2: a reminder, the superior
    assert len(rows) == 7


def test_the_tier_csv_ends_with_the_whole_incident() -> None:
    rows = list(csv.reader(io.StringIO(drillreport.tiers_csv(_report()))))
    assert [r[0] for r in rows[1:]] == ["county", "township", "village", "all"]
    outcomes = ["all", "6", "2", "1", "1", "1", "1", "50.0", "120", "720"]
    assert rows[-1] == [*outcomes, "2", "0", "1", "0", "0", "0", "3"]
    assert rows[0][10:] == [*drillreport.KIND_HEADER, "升级合计 escalations"]


@pytest.mark.parametrize(
    "evil", ['=HYPERLINK("http://example.invalid","点我")', "@SUM(A1)", "-1+2"]
)
def test_a_name_typed_as_a_formula_reaches_the_report_csv_as_text(evil: str) -> None:
    """``warnbot drill report --format csv`` writes through ``csvcells`` as the console's
    exports do: the cell is quoted, other text is left as it is."""
    people = {**PEOPLE, "t1": named("t1", Tier.TOWNSHIP, evil)}
    report = drillreport.build(
        DRILL, TIMELINE, people, STEPS, T0 + timedelta(minutes=20), unreachable={"v2"}
    )
    rows = list(csv.reader(io.StringIO(drillreport.people_csv(report))))
    assert rows[2][:3] == ["township", "t1", "'" + evil]
    assert rows[1][2] == "县值班<script>"


def test_the_html_page_is_chinese_first_and_escapes_what_it_shows() -> None:
    page = drillreport.html(_report())
    assert "【演练】演练报告" in page and "分层汇总" in page and "逐人明细" in page
    assert "县值班&lt;script&gt;" in page and "<script>" not in page
    assert "迟到确认" in page and "无法联系" in page
    for kind in drillreport.KINDS:
        assert f"<th>{drillreport.STEP_ZH[kind]} <span" in page
    assert "12分00秒" in page


def test_a_person_whose_every_number_failed_is_unreachable() -> None:
    people = {"a": person("a"), "b": dataclasses.replace(person("b"), phones=("+1", "+2"))}
    failures = {"a": {people["a"].phones[0]}, "b": {"+1"}}
    assert drillreport.unreachable_keys(people, failures) == frozenset({"a"})


# --- the drill report through the real store ------------------------------------------------------


def _message(req: Request) -> list[Message]:
    return [Message(f"request:{req.id}", "console", "+8617000000001", "b", req.incident_id)]


async def test_the_report_is_built_from_what_the_store_holds(rstore: Store) -> None:
    drill = await rstore.open_incident(dataclasses.replace(incident(T0), drill=True), None)
    people = _roster()
    await rstore.sync_roster(list(people.values()))
    reqs = await rstore.add_requests(
        drill.id, [delivery(p, T0) for p in people.values()], T0, _message
    )
    by_key = {r.responder_key: r for r in reqs}
    await rstore.record_ack(by_key["c1"].id, "sms", "1", T0 + timedelta(minutes=3))
    await rstore.record_ack(by_key["v1"].id, "link", "", T0 + timedelta(minutes=14))
    ladder = [
        Step(f"repeat:{by_key['t1'].id}:1", "repeat", drill.id, by_key["t1"].id, "t1", n=1),
        Step(f"superior:{by_key['t1'].id}", "superior", drill.id, by_key["t1"].id, "t1"),
    ]
    await rstore.fire(ladder[:1], T0 + timedelta(minutes=10), lambda fired: [])
    await rstore.fire(ladder[1:], T0 + timedelta(minutes=15), lambda fired: [])
    v2 = people["v2"]
    await rstore.record_address_failure("v2", "console", v2.phones[0], "30005", "unknown", T0)

    report = await drillcli.load_report(rstore, drill.id, T0 + timedelta(minutes=20))
    assert report is not None and report.incident.drill
    outcomes = {p.responder_key: (p.outcome, p.confirm_s, p.escalated) for p in report.people}
    assert outcomes == {
        "c1": ("confirmed", 180.0, 0),
        "t1": ("silent", None, 2),
        "v1": ("late", 840.0, 0),
        "v2": ("unreachable", None, 0),
    }
    assert [p.name for p in report.people] == ["县甲", "乡甲", "村甲", "村乙"]
    assert "【演练】演练报告" in drillreport.html(report)
    assert await drillcli.load_report(rstore, 999, T0) is None


def test_after_an_upgrade_each_person_counts_once_with_all_their_steps() -> None:
    """v1 was asked at Ⅱ (request 1, reminded), then again at Ⅰ (request 8, answered)."""
    old = dataclasses.replace(_req(1, "v1", Tier.VILLAGE, None), status="superseded")
    new = _req(8, "v1", Tier.VILLAGE, 16)
    steps = [
        ReportStep("repeat:1:1", "repeat", T0 + timedelta(minutes=10), 1),
        ReportStep("voice:8:1", "voice", T0 + timedelta(minutes=14), 8),
    ]
    report = drillreport.build(DRILL, [old, new], PEOPLE, steps, T0 + timedelta(minutes=20))
    (row,) = report.people
    assert (row.outcome, row.escalations) == ("late", {"repeat": 1, "voice": 1})
    assert report.total is not None and report.total.total == 1


async def test_the_report_of_an_upgraded_incident_names_each_person_once(app: Any) -> None:
    from warnbot.evaluate import Transition
    from warnbot.ingest import cap

    feed = (ROOT / "config" / "demo" / "feed" / "rainstorm_orange.xml").read_bytes()
    await app.ingest("demo", cap.parse(feed))
    upgrade = Transition("upgrade", "暴雨@449901", "暴雨", "449901", Level.I, "红色", "t", 1)
    await app.apply(upgrade, None, source="test")
    assert len(await app.store.requests_of(1)) == 22  # everyone asked twice
    report = await drillcli.load_report(app.store, 1, app.clock())
    assert report is not None and report.total is not None
    assert report.total.total == 11
    assert len({p.responder_key for p in report.people}) == len(report.people) == 11
    rows = list(csv.reader(io.StringIO(drillreport.tiers_csv(report))))
    assert rows[-1][:2] == ["all", "11"]


def _roster() -> dict[str, Responder]:
    people = [
        named("c1", Tier.COUNTY, "县甲", "449901"),
        named("t1", Tier.TOWNSHIP, "乡甲", "449901001"),
        named("v1", Tier.VILLAGE, "村甲"),
        named("v2", Tier.VILLAGE, "村乙"),
    ]
    return {p.key: p for p in people}


# --- the command line and the migration -----------------------------------------------------------


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="warnbot")
    parser.add_argument("--config", type=Path)
    drillcli.register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def test_the_drill_commands_plan_list_report_and_cancel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WARNBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    monkeypatch.delenv("WARNBOT_CONFIG", raising=False)
    window = ["--start", "2099-08-20T08:00+08:00", "--end", "2099-08-20T18:00+08:00"]
    scenario = ["--level", "Ⅱ", "--region", "449901", "--hazard", "暴雨", "--headline", "演练标题"]
    assert _run(["drill", "schedule", *window, *scenario]) == 0
    planned = capsys.readouterr().out
    assert "已安排演练 drill planned #1" in planned and "2099-08-20T00:00:00+00:00" in planned
    assert _run(["drill", "list"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("#1 scheduled") and "暴雨" not in listed and "演练标题" not in listed
    assert _run(["drill", "report", "5", "--format", "html"]) == 1
    assert "无此响应 no incident 5" in capsys.readouterr().err
    assert _run(["drill", "cancel", "1"]) == 0
    assert _run(["drill", "cancel", "1"]) == 1


def test_a_window_without_a_time_zone_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _run(["drill", "schedule", "--start", "2099-08-20T08:00", "--end", "x"])
    assert "give the time zone" in capsys.readouterr().err


async def test_migration_0007_goes_down_and_up_again(tmp_path: Path) -> None:
    store = Store.connect(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    try:
        await store.migrate()
        await migrate_to(store, "0006")
        await store.migrate()
        again = Store(store.engine)
        assert await again.drill_plans() == []
    finally:
        await store.close()


async def migrate_to(store: Store, revision: str) -> None:
    from alembic import command

    from warnbot.store.db import alembic_config

    async with store.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), revision))


async def test_migration_0007_creates_exactly_the_tables_the_code_reads(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from warnbot.store.tables import metadata

    async with store.engine.connect() as conn:
        diffs = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), metadata)
        )
    mine = ("reports", "transfer_entries", "transfer_marks", "drill_plans")
    assert [d for d in diffs if any(f"'{t}'" in str(d) for t in mine)] == []
