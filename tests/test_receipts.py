"""Reports back (回执上报): the parser, the sums per region, and their storage on both engines."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import T0
from tests.factories import delivery, incident, person
from warnbot.model import Message, Request, Tier
from warnbot.receipts import Filed, Report, Totals, number, parse_report, rollup, totals_line
from warnbot.regions import build_tree
from warnbot.store import Store
from warnbot.store.reports import ReportStore


class FullStore(Store, ReportStore):
    """The store as the lead will compose it: ``Store`` plus this mixin."""


@pytest.fixture
def rstore(store: Store) -> FullStore:
    return FullStore(store.engine)


# --- the parser -------------------------------------------------------------------------------

CASES = [
    # text, code, counts, arrived
    ("1 已转移12户30人", "1", {"households_moved": 12, "people_moved": 30}, False),
    ("到岗", None, {}, True),
    ("收到，已组织巡查3处", None, {"patrols": 3}, False),
    ("2 转移 5 户 12 人", "2", {"households_moved": 5, "people_moved": 12}, False),
    ("１ 已转移１２户３０人", "1", {"households_moved": 12, "people_moved": 30}, False),
    ("moved 12 households 30 people", None, {"households_moved": 12, "people_moved": 30}, False),
    ("evacuated 3 families, 9 residents", None, {"households_moved": 3, "people_moved": 9}, False),
    ("12户30人", None, {"households_moved": 12, "people_moved": 30}, False),
    (
        "转移5户12人，出动20人",
        None,
        {"households_moved": 5, "people_moved": 12, "staff_out": 20},
        False,
    ),
    ("出动抢险队3支，人员45人", None, {"teams_out": 3, "staff_out": 45}, False),
    ("派出2支队伍", None, {"teams_out": 2}, False),
    ("2 teams out, 15 people on post", None, {"teams_out": 2, "staff_out": 15}, True),
    ("累计转移十二户三十五人", None, {"households_moved": 12, "people_moved": 35}, False),
    ("到岗5人", None, {"staff_out": 5}, True),
    ("3 arrived", "3", {}, True),
    ("1", "1", {}, False),
    ("30人", None, {}, False),  # who are they? kept verbatim, not counted
    ("道路冲毁，请求支援", None, {}, False),
    ("", None, {}, False),
]


@pytest.mark.parametrize(("text", "code", "counts", "arrived"), CASES)
def test_a_report_is_read_into_figures_and_kept_verbatim(
    text: str, code: str | None, counts: dict[str, int], arrived: bool
) -> None:
    report = parse_report(text)
    assert (report.text, report.code, report.counts(), report.arrived) == (
        text,
        code,
        counts,
        arrived,
    )


@pytest.mark.parametrize(
    ("text", "entries", "all_moved"),
    [
        ("已转移 3号", ("3",), False),
        ("已转移 3号、5号", ("3", "5"), False),
        ("已转移第3号和第7号", ("3", "7"), False),
        ("moved #3, #5", ("3", "5"), False),
        ("moved no. 4", ("4",), False),
        ("全部转移", (), True),
        ("已转移全部", (), True),
        ("收到。全部转移完毕", (), True),
        ("all moved", (), True),
        ("3号到岗", (), False),  # not a transfer: nothing is marked
    ],
)
def test_a_report_names_the_transfer_list_entries_it_moved(
    text: str, entries: tuple[str, ...], all_moved: bool
) -> None:
    report = parse_report(text)
    assert (report.entries, report.all_moved) == (entries, all_moved)


def test_a_running_total_is_flagged_so_it_replaces_earlier_figures() -> None:
    assert parse_report("累计转移20户").cumulative
    assert not parse_report("转移20户").cumulative


@pytest.mark.parametrize(
    ("text", "value"),
    [("十二", 12), ("三十", 30), ("三十五", 35), ("一百零五", 105), ("两千", 2000), ("7", 7)],
)
def test_chinese_numerals_are_read(text: str, value: int) -> None:
    assert number(text) == value


@given(st.text())
def test_the_parser_never_raises_and_keeps_the_text(text: str) -> None:
    report = parse_report(text)
    assert report.text == text
    assert all(v >= 0 for v in report.counts().values())


@given(
    code=st.integers(1, 9),
    households=st.integers(1, 9999),
    people=st.integers(1, 99999),
    wide=st.booleans(),
    spaces=st.booleans(),
)
def test_any_transfer_figures_are_read_back(
    code: int, households: int, people: int, wide: bool, spaces: bool
) -> None:
    gap = " " if spaces else ""
    text = f"{code} 已转移{gap}{households}{gap}户{gap}{people}{gap}人"
    if wide:  # full-width digits, as some phones send
        text = text.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    report = parse_report(text)
    assert (report.code, report.households_moved, report.people_moved) == (
        str(code),
        households,
        people,
    )


# --- sums per person and region -----------------------------------------------------------------


def _filed(key: str, region: str, text: str, minute: int) -> Filed:
    return Filed(key, region, T0 + timedelta(minutes=minute), parse_report(text))


def test_a_running_total_replaces_and_a_plain_report_adds() -> None:
    filed = [
        _filed("A", "449901001001", "已转移3户8人", 1),
        _filed("A", "449901001001", "又转移2户5人", 2),
        _filed("B", "449901001001", "累计转移4户9人", 1),
        _filed("B", "449901001001", "累计转移6户15人", 3),
    ]
    village = rollup(filed)["449901001001"]
    assert (village.own.households_moved, village.own.people_moved) == (5 + 6, 13 + 15)


def test_figures_roll_up_through_township_county_city_and_province() -> None:
    tree = build_tree(
        [
            ("440000", "示例省", None),
            ("449900", "示例市", None),
            ("449901", "示例县", None),
            ("449901001", "甲镇", None),
            ("449901001001", "一村", None),
            ("449901001002", "二村", None),
            ("449901002", "乙镇", None),
        ]
    )
    filed = [
        _filed("v1", "449901001001", "1 已转移12户30人", 1),
        _filed("v2", "449901001002", "已转移3户7人，出动抢险队1支", 2),
        _filed("t2", "449901002", "到岗，出动20人", 3),
        _filed("c", "449901", "收到", 4),
    ]
    sums = rollup(filed, tree)
    assert sums["449901001"].total.people_moved == 37
    assert sums["449901001"].own == Totals()
    assert sums["449901001"].name == "甲镇"
    county = sums["449901"].total
    assert (county.households_moved, county.people_moved, county.teams_out) == (15, 37, 1)
    assert (county.staff_out, county.on_post, county.reports) == (20, 1, 4)
    assert sums["440000"].total == county
    assert "转移 15 户 37 人" in totals_line(county)


# --- the store --------------------------------------------------------------------------------


def _message(req: Request) -> list[Message]:
    return [Message(f"request:{req.id}", "console", "+8617000000001", "b", req.incident_id)]


async def test_reports_are_stored_verbatim_and_summed_per_region(rstore: FullStore) -> None:
    opened = await rstore.open_incident(incident(T0), warning_key=None)
    v1 = person("v1", region="449901001001")
    v2 = person("v2", region="449901001002")
    t1 = person("t1", Tier.TOWNSHIP, region="449901001")
    reqs = await rstore.add_requests(
        opened.id, [delivery(p, T0) for p in (v1, v2, t1)], T0, _message
    )
    by_key = {r.responder_key: r for r in reqs}
    for p, text, minute in [
        (v1, "1 已转移12户30人", 3),
        (v2, "2 转移 5 户 12 人", 4),
        (t1, "到岗，已组织巡查3处", 5),
        (v1, "累计转移14户35人", 20),
    ]:
        await rstore.file_report(
            opened.id,
            by_key[p.key].id,
            p,
            parse_report(text),
            "sms",
            T0 + timedelta(minutes=minute),
        )
    stored = await rstore.reports_of(opened.id)
    assert [f.report.text for f in stored] == [
        "1 已转移12户30人",
        "2 转移 5 户 12 人",
        "到岗，已组织巡查3处",
        "累计转移14户35人",
    ]
    assert stored[0].request_id == by_key["v1"].id and stored[0].tier == "village"
    sums = await rstore.report_totals(opened.id)
    township = sums["449901001"].total
    assert (township.households_moved, township.people_moved) == (14 + 5, 35 + 12)
    assert (township.patrols, township.on_post) == (3, 1)
    assert sums["449901"].total == township


async def test_a_retried_webhook_files_its_report_once(rstore: FullStore) -> None:
    opened = await rstore.open_incident(incident(T0), warning_key=None)
    v1 = person("v1")
    report = parse_report("已转移2户5人")
    first = await rstore.file_report(opened.id, None, v1, report, "sms", T0, dedup_key="SM1")
    again = await rstore.file_report(opened.id, None, v1, report, "sms", T0, dedup_key="SM1")
    assert first[0] is not None and again == (None, [])
    assert len(await rstore.reports_of(opened.id)) == 1


def test_report_without_numbers_is_not_parsed_but_kept() -> None:
    report = Report("道路冲毁")
    assert not report.parsed and parse_report("到岗").parsed
