"""Transfer lists (转移清单): import with FILE:LINE errors, the message block, the board."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import DEMO, ROOT, T0
from tests.factories import POLICY, delivery, incident, person
from tests.test_rosters_tablefile import workbook
from warnbot import links, sms, transfers
from warnbot.app import App
from warnbot.errors import ConfigError
from warnbot.ingest import cap
from warnbot.model import LevelPolicy, Message, Request
from warnbot.receipts import parse_report
from warnbot.render import Renderer
from warnbot.store import Store
from warnbot.store.reports import ReportStore
from warnbot.transfers import Mark, TransferEntry
from warnbot.web import make_app

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()


class FullStore(Store, ReportStore):
    """The store as the lead will compose it: ``Store`` plus this mixin."""


@pytest.fixture
def rstore(store: Store) -> FullStore:
    return FullStore(store.engine)


CSV = """责任人编号,序号,户主,人数,联系电话,转移路线,安置点,备注
v1,1,王某某,3,13800138101,沿村道向东500米,村委会,
v1,2,李某某（独居老人）,1,,沿河堤北行,村小学,需担架
v2,,赵某某,4,+8613800138103,沿公路北上,镇中心学校,
v2,,钱某某,2,,沿公路北上,镇中心学校,
"""

YAML = """- responder: v1
  household: 王某某
  people: 3
  route: 沿村道向东500米
  destination: 村委会
- responder: v1
  household: 李某某
  people: 1
  phone: "13800138102"
  route: 沿河堤北行
  destination: 村小学
  notes: 行动不便
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_csv_list_with_chinese_headers_is_read_with_numbers_and_phones(tmp_path: Path) -> None:
    entries = transfers.load(_write(tmp_path, "list.csv", CSV), known={"v1", "v2"})
    assert [(e.responder_key, e.no, e.household, e.people) for e in entries] == [
        ("v1", "1", "王某某", 3),
        ("v1", "2", "李某某（独居老人）", 1),
        ("v2", "1", "赵某某", 4),  # numbered in file order when 序号 is empty
        ("v2", "2", "钱某某", 2),
    ]
    assert entries[0].phone == "+8613800138101" and entries[1].phone is None
    assert entries[1].notes == "需担架" and entries[0].source.endswith("list.csv:2")


def test_the_same_list_kept_as_a_workbook_with_a_title_row_reads_alike(tmp_path: Path) -> None:
    rows = [row.split(",") for row in CSV.strip().splitlines()]
    path = workbook(tmp_path / "list.xlsx", {"转移清单": [["示例村转移清单"], *rows]})
    from_csv = transfers.load(_write(tmp_path, "list.csv", CSV), known={"v1", "v2"})
    from_xlsx = transfers.load(path, known={"v1", "v2"})
    assert [dataclasses.replace(e, source="") for e in from_xlsx] == [
        dataclasses.replace(e, source="") for e in from_csv
    ]
    assert from_xlsx[0].source == f"{path}:转移清单!3"  # below the title row and header


def test_a_yaml_list_with_english_keys_is_read(tmp_path: Path) -> None:
    entries = transfers.load(_write(tmp_path, "list.yaml", YAML))
    assert [(e.no, e.destination, e.phone) for e in entries] == [
        ("1", "村委会", None),
        ("2", "村小学", "+8613800138102"),
    ]
    assert entries[1].source.endswith("list.yaml:6")


def test_every_bad_row_is_reported_with_its_file_line_and_nothing_is_returned(
    tmp_path: Path,
) -> None:
    bad = (
        "责任人编号,序号,户主,人数,联系电话,转移路线,安置点\n"
        "v1,1,王某某,3,,沿村道,村委会\n"
        ",2,李某某,0,12345,沿河堤,\n"
        "v1,1,孙某某,2,,沿村道,村委会\n"
        "ghost,1,周某某,二,,沿村道,村委会\n"
    )
    path = _write(tmp_path, "bad.csv", bad)
    with pytest.raises(ConfigError) as caught:
        transfers.load(path, known={"v1"})
    problems = caught.value.problems
    assert f"{path}:3: 责任人编号/responder_key is empty" in problems
    assert f"{path}:3: 安置点/shelter is empty" in problems
    assert f"{path}:3: 人数/people '0' is not a positive whole number" in problems
    assert f"{path}:3: 电话/phone '12345' is not a valid number" in problems
    assert f"{path}:4: entry 1 of 'v1' is listed twice (first {path}:2)" in problems
    assert f"{path}:5: 人数/people '二' is not a positive whole number" in problems
    assert len(problems) == 6


def test_a_file_without_the_needed_columns_is_refused_at_line_one(tmp_path: Path) -> None:
    path = _write(tmp_path, "cols.csv", "责任人编号,户主\nv1,王某某\n")
    with pytest.raises(ConfigError) as caught:
        transfers.load(path)
    assert caught.value.problems == [
        f"{path}:1: missing column(s) 人数/people, 转移路线/route, 安置点/destination"
    ]


def test_an_entry_for_someone_not_on_the_roster_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "list.yaml", YAML)
    with pytest.raises(ConfigError, match=r"list.yaml:1: responder 'v1' is not in the roster"):
        transfers.load(path, known={"v2"})


def test_yaml_that_is_not_a_list_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a list of entries"):
        transfers.load(_write(tmp_path, "x.yaml", "responder: v1\n"))


# --- the message ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferPolicy(LevelPolicy):
    """A level policy with the flag the lead adds to ``LevelPolicy``."""

    transfer: bool = False


def test_only_a_policy_flagged_for_transfer_calls_for_it() -> None:
    assert not transfers.calls_for_transfer(POLICY)
    assert not transfers.calls_for_transfer(TransferPolicy(POLICY.tiers))
    assert transfers.calls_for_transfer(TransferPolicy(POLICY.tiers, transfer=True))


def _entries(n: int) -> list[TransferEntry]:
    return [
        TransferEntry("v1", str(i), f"户主{i}", 2, "沿村道向东", "村委会") for i in range(1, n + 1)
    ]


def test_a_short_list_travels_whole_in_the_message() -> None:
    block = transfers.render_block(Renderer(), _entries(2), "zh", "https://w.example/a/x/t")
    body = "【Ⅱ级响应】示例县暴雨橙色预警。请回复1确认"
    text = transfers.choose_block(body, block)
    assert text == body + "\n" + block.full
    assert "1号户主1(2人)，沿村道向东→村委会" in text and "全部转移" in text
    assert sms.segments(text) <= 3


def test_a_long_list_becomes_a_count_and_a_link() -> None:
    block = transfers.render_block(Renderer(), _entries(12), "zh", "https://w.example/a/x/t")
    text = transfers.choose_block("【Ⅱ级响应】示例县暴雨橙色预警。请回复1确认", block)
    assert "转移清单12户24人，名单见 https://w.example/a/x/t" in text
    assert "户主12" not in text and sms.segments(text) <= 3


def test_a_person_without_a_list_gets_the_message_unchanged() -> None:
    block = transfers.render_block(Renderer(), [], "zh", "https://w.example/a/x/t")
    assert transfers.choose_block("正文", block) == "正文"


def test_the_english_block_tells_how_to_report() -> None:
    block = transfers.render_block(Renderer(), _entries(1), "en", "https://w.example/a/x/t")
    assert block.full.startswith("Transfer list, 1 households, 2 people: 1. 户主1 (2)")
    assert 'reply "moved #NUMBER"' in block.short


# --- progress -------------------------------------------------------------------------------------


def test_a_report_marks_only_entries_of_the_persons_own_list() -> None:
    own = _entries(3)
    marks = transfers.marks_from_report("v1", own, parse_report("已转移 3号、9号"), T0)
    assert [(m.no, m.via, m.by) for m in marks] == [("3", "report", "v1")]
    everything = transfers.marks_from_report("v1", own, parse_report("全部转移"), T0)
    assert [m.no for m in everything] == ["1", "2", "3"]


def test_the_board_shows_unmoved_entries_and_puts_unfinished_lists_first() -> None:
    entries = [*_entries(2), TransferEntry("v0", "1", "吴某某", 1, "路", "点")]
    marks = [Mark("v1", "1", "v1", "report", T0), Mark("v0", "1", "值班员张三", "duty_officer", T0)]
    board = transfers.progress(entries, marks)
    assert [(p.responder_key, p.moved, p.remaining) for p in board] == [("v1", 1, 1), ("v0", 1, 0)]
    lines = transfers.board_lines(board)
    assert lines[0] == "v1: 已转移 1/2 户 moved, 2/4 人 people"
    assert lines[1] == "  2号 户主2 2人 → 村委会 未转移 not moved"


# --- the store ------------------------------------------------------------------------------------


def _message(req: Request) -> list[Message]:
    return [Message(f"request:{req.id}", "console", "+8617000000001", "b", req.incident_id)]


async def test_reports_and_the_duty_officer_mark_entries_until_all_are_moved(
    rstore: FullStore, tmp_path: Path
) -> None:
    await rstore.sync_transfer_lists(transfers.load(_write(tmp_path, "list.csv", CSV)))
    opened = await rstore.open_incident(incident(T0), warning_key=None)
    v1, v2 = person("v1"), person("v2")
    reqs = await rstore.add_requests(opened.id, [delivery(p, T0) for p in (v1, v2)], T0, _message)
    later = T0 + timedelta(minutes=30)

    _, marks = await rstore.file_report(
        opened.id, reqs[0].id, v1, parse_report("1 已转移 2号"), "sms", later
    )
    assert [m.no for m in marks] == ["2"]
    by_hand = Mark("v1", "1", "值班员张三", "duty_officer", later)
    assert await rstore.mark_moved(opened.id, [by_hand]) == [by_hand]
    assert await rstore.mark_moved(opened.id, [by_hand]) == []  # the first mark counts
    _, marks = await rstore.file_report(
        opened.id, reqs[1].id, v2, parse_report("全部转移"), "sms", later
    )
    assert [m.no for m in marks] == ["1", "2"]

    board = await rstore.transfer_board(opened.id)
    assert [(p.responder_key, p.moved, p.remaining) for p in board] == [("v1", 2, 0), ("v2", 2, 0)]
    stored = {(m.responder_key, m.no): m for m in await rstore.transfer_marks(opened.id)}
    assert stored[("v1", "1")].by == "值班员张三" and stored[("v1", "2")].report_id is not None


async def test_a_new_list_replaces_the_old_one_whole(rstore: FullStore, tmp_path: Path) -> None:
    await rstore.sync_transfer_lists(transfers.load(_write(tmp_path, "a.csv", CSV)))
    await rstore.sync_transfer_lists(transfers.load(_write(tmp_path, "b.yaml", YAML)))
    stored = await rstore.transfer_list()
    assert [(e.responder_key, e.no, e.household) for e in stored] == [
        ("v1", "1", "王某某"),
        ("v1", "2", "李某某"),
    ]
    assert await rstore.transfer_list(["v2"]) == []


async def test_the_board_of_an_incident_lists_only_persons_asked_in_it(
    rstore: FullStore, tmp_path: Path
) -> None:
    await rstore.sync_transfer_lists(transfers.load(_write(tmp_path, "list.csv", CSV)))
    opened = await rstore.open_incident(incident(T0), warning_key=None)
    await rstore.add_requests(opened.id, [delivery(person("v2"), T0)], T0, _message)
    board = await rstore.transfer_board(opened.id)
    assert [(p.responder_key, p.remaining, p.people_total) for p in board] == [("v2", 2, 6)]


async def test_a_duty_officer_marks_entries_moved_under_their_own_name(
    app: App, clock: Any
) -> None:
    await app.store.sync_transfer_lists(
        [TransferEntry("V01", str(n), f"户{n}", n, "沿村道", "村委会") for n in (1, 2, 3)]
    )
    await app.ingest("demo", cap.parse(FEED))
    marks = await app.mark_moved(1, "V01", ["2号", "3"], "值班员张三")
    assert [(m.no, m.by, m.via) for m in marks] == [
        ("2", "值班员张三", "duty_officer"),
        ("3", "值班员张三", "duty_officer"),
    ]
    assert await app.mark_moved(1, "V01", ["2"], "值班员李四") == []  # the first mark stays
    assert [m.no for m in await app.mark_moved(1, "V01", ["all"], "值班员李四")] == ["1"]
    (board,) = await app.transfer_board(1)
    assert (board.moved, board.remaining) == (3, 0)


@pytest.mark.parametrize(
    ("person_key", "entries", "by", "says"),
    [
        ("V01", ["9"], "值班员张三", "没有 9 号"),
        ("V01", ["1"], " ", "required"),
        ("nobody", ["1"], "值班员张三", "was not asked"),
    ],
    ids=["unknown-entry", "no-name", "not-asked"],
)
async def test_a_wrong_mark_is_refused_with_the_reason_and_changes_nothing(
    app: App, person_key: str, entries: list[str], by: str, says: str
) -> None:
    await app.store.sync_transfer_lists([TransferEntry("V01", "1", "户1", 2, "沿村道", "村委会")])
    await app.ingest("demo", cap.parse(FEED))
    with pytest.raises(ValueError, match=says):
        await app.mark_moved(1, person_key, entries, by)
    assert await app.store.transfer_marks(1) == []


# --- the page behind the signed link ------------------------------------------------------------


async def test_the_signed_link_page_shows_the_persons_list_and_what_is_moved(
    app: App, aiohttp_client: Any
) -> None:
    await app.ingest("demo", cap.parse(FEED))
    req = next(r for r in await app.store.requests_of(1) if r.responder_key == "X01")
    other = next(r for r in await app.store.requests_of(1) if r.responder_key != "X01")
    reports = Store(app.store.engine)
    await reports.sync_transfer_lists(
        [
            TransferEntry("X01", "1", "王<b>某某", 3, "沿村道向东", "村委会", "+8613800138101"),
            TransferEntry("X01", "2", "李某某", 1, "沿河堤北行", "村小学", notes="需担架"),
        ]
    )
    await reports.mark_moved(1, [Mark("X01", "2", "值班员张三", "duty_officer", T0)])
    client: TestClient = await aiohttp_client(make_app(app))

    html = await (await client.get(f"/a/{links.sign(req.id, app.link_secret)}/list")).text()
    assert "转移清单" in html and "已转移 1/2" in html
    assert "王&lt;b&gt;某某" in html and "沿村道向东 → 安置点" in html and "需担架" in html
    assert html.count("未转移 not moved") == 1
    elsewhere = await (await client.get(f"/a/{links.sign(other.id, app.link_secret)}/list")).text()
    assert "您没有转移清单" in elsewhere and "王" not in elsewhere
    assert (await client.get("/a/1.AAAAAAAAAAAA/list")).status == 404


# --- the command line ----------------------------------------------------------------------------


async def test_warnbot_transfer_moved_marks_an_entry_with_the_officers_name(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/w.db"
    store = Store.connect(url)
    await store.migrate()
    await store.sync_transfer_lists(transfers.load(_write(tmp_path, "list.csv", CSV)))
    made = await store.open_incident(incident(T0), None)
    await store.add_requests(made.id, [delivery(person("v1"), T0)], T0, lambda r: [])
    await store.close()

    def transfer(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "warnbot", "transfer", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "WARNBOT_DATABASE_URL": url},
            cwd=ROOT,
            timeout=60,
            check=False,
        )

    moved = ["moved", "--incident", str(made.id), "--person", "v1", "--by", "值班员张三"]
    done = transfer(*moved, "--entry", "2")
    assert done.returncode == 0, done.stderr
    assert "已登记转移 marked moved" in done.stdout and "2号" in done.stdout
    wrong = transfer(*moved, "--entry", "7")
    assert wrong.returncode == 1 and "没有 7 号" in wrong.stderr
    board = transfer("board", "--incident", str(made.id))
    assert "v1: 已转移 1/2 户 moved" in board.stdout and "1号 王某某" in board.stdout
    store = Store.connect(url)
    (mark,) = await store.transfer_marks(made.id)
    await store.close()
    assert (mark.no, mark.by, mark.via) == ("2", "值班员张三", "duty_officer")
