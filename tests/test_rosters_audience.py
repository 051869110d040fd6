"""Tests for public audiences 受众: validated files, dedup, region filtering, tip SMS messages."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import DEMO, ROOT, T0
from tests.factories import incident
from tests.test_rosters_tablefile import workbook
from warnbot.errors import ConfigError
from warnbot.model import Message, TipBlast
from warnbot.regions import load_tree
from warnbot.rosters.audience import load_audience, tip_blast
from warnbot.store import Store
from warnbot.store.tables import outbox

DEMO_AUDIENCE = ROOT / "config" / "rosters" / "demo_audience.csv"
TREE = load_tree(DEMO / "regions.toml")


def audience_file(tmp_path: Path, *rows: str, header: str = "手机号码,行政区划代码") -> Path:
    path = tmp_path / "audience.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_audience(path, tree=TREE)
    return caught.value.problems


# --- files ------------------------------------------------------------------------------------


def test_the_demo_audience_loads_with_its_duplicate_counted_once() -> None:
    audience = load_audience(DEMO_AUDIENCE, tree=TREE)
    assert len(audience.members) == 10 and audience.duplicates == 1
    assert audience.members["+8617000002009"] == "449901003"  # typed with spaces
    assert audience.members["+8617000002010"] == "449901"


def test_an_xlsx_audience_with_english_headers_and_numeric_cells_loads(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "a.xlsx",
        {"residents": [["Mobile", "Region"], [13800138001, 449901001001], [13800138001, 449901]]},
    )
    audience = load_audience(path, tree=TREE)
    assert audience.members == {"+8613800138001": "449901001001"}
    assert audience.duplicates == 1


def test_region_codes_are_stored_in_their_canonical_spelling(tmp_path: Path) -> None:
    path = audience_file(tmp_path, "13800138001,449901000000", "13800138002,449901001000")
    assert load_audience(path).members == {
        "+8613800138001": "449901",
        "+8613800138002": "449901001",
    }


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("12345,449901", "'12345' is not a mobile number"),
        ("020-12345678,449901", "'020-12345678' is not a mobile number"),  # a landline: no SMS
        (",449901", "'' is not a mobile number"),
        ("13800138001,4499", "行政区划代码/region_code '4499' is not a 6, 9 or 12 digit code"),
        ("13800138001,450000", "行政区划代码/region_code '450000' is not in the region tree"),
    ],
)
def test_a_bad_row_is_reported_at_its_line(tmp_path: Path, row: str, message: str) -> None:
    path = audience_file(tmp_path, "13800138009,449901", row)
    assert problems(path) == [f"{path}:3: {message}"]


def test_a_village_below_the_trees_regions_is_known_by_its_township(tmp_path: Path) -> None:
    path = audience_file(tmp_path, "13800138001,449901001009")  # the tree lists two villages
    assert load_audience(path, tree=TREE).members == {"+8613800138001": "449901001009"}


def test_every_bad_row_is_listed(tmp_path: Path) -> None:
    path = audience_file(tmp_path, "1,449901", "13800138001,449901", "2,3")
    assert [p.split(": ", 1)[0] for p in problems(path)] == [
        f"{path}:2", f"{path}:4", f"{path}:4",
    ]  # fmt: skip


# --- tip SMS ----------------------------------------------------------------------------------


def test_a_drill_has_no_tip_blast_for_the_public() -> None:
    drill = dataclasses.replace(incident(T0), id=7, drill=True)
    assert tip_blast(drill, "【演练】", "aliyun") is None
    real = tip_blast(dataclasses.replace(incident(T0), id=7), "提示", "aliyun")
    assert real is not None and real.key_prefix == "tip:7:" and real.priority == 1


# --- the store --------------------------------------------------------------------------------


BLAST = TipBlast(7, "【示例县】暴雨提示", "console")


async def numbers(store: Store, name: str, codes: list[str], blast: TipBlast = BLAST) -> list[str]:
    """The numbers a tip blast to ``codes`` queues, in number order."""
    await store.enqueue_tips(name, codes, blast, T0)
    query = sa.select(outbox.c.address).where(outbox.c.key.startswith(blast.key_prefix))
    async with store.engine.connect() as conn:
        return sorted((await conn.execute(query)).scalars())


async def test_a_blast_reaches_the_audience_of_its_regions_and_the_regions_inside(
    store: Store,
) -> None:
    audience = load_audience(DEMO_AUDIENCE, tree=TREE)
    assert await store.replace_audience("示例县居民", audience.members, "demo.csv", T0) == 10
    town = await numbers(store, "示例县居民", ["449901001"])
    assert town == ["+8617000002001", "+8617000002002", "+8617000002003", "+8617000002007"]
    county = TipBlast(8, "县", "console")
    assert await numbers(store, "示例县居民", ["449901000000"], county) == sorted(audience.members)
    two = TipBlast(9, "两地", "console")
    assert await numbers(store, "示例县居民", ["449901002", "449901003001"], two) == [
        "+8617000002004",
        "+8617000002005",
        "+8617000002006",
        "+8617000002008",
    ]
    assert await store.enqueue_tips("示例县居民", [], TipBlast(10, "x", "console"), T0) == 0
    assert await store.enqueue_tips("nobody", ["449901"], TipBlast(11, "x", "console"), T0) == 0


async def test_audiences_are_kept_apart_and_a_reimport_replaces_one(store: Store) -> None:
    await store.replace_audience(
        "a", {"+8613800138001": "449901", "+8613800138002": "449901"}, "a", T0
    )
    await store.replace_audience("b", {"+8613800138001": "449901001"}, "b", T0)
    await store.replace_audience("a", {"+8613800138003": "449901"}, "a2", T0)
    assert await store.audience_sizes() == {"a": 1, "b": 1}
    assert await numbers(store, "a", ["449901"], TipBlast(1, "a", "console")) == ["+8613800138003"]
    assert await numbers(store, "b", ["449901"], TipBlast(2, "b", "console")) == ["+8613800138001"]
    assert await store.roster() == []  # residents are not responders


async def test_tips_for_an_incident_wait_behind_responders_and_are_queued_once(
    store: Store,
) -> None:
    members = {f"+861380013{n:04d}": "449901001001" if n % 2 else "449901002" for n in range(1200)}
    await store.replace_audience("居民", members, "gen", T0)
    assert await store.enqueue_tips("居民", ["449901001"], BLAST, T0) == 600
    await store.enqueue([Message("request:1:console", "console", "+8617000000201", "请回复1")], T0)
    assert await store.enqueue_tips("居民", ["449901"], BLAST, T0) == 600  # only the new ones
    (first,) = await store.claim(1, T0, 30)
    assert first.key == "request:1:console"  # lane 0 first, though queued after tips
    claimed = await store.claim(2000, T0, 30)
    tips = [r for r in claimed if r.key.startswith("tip:7:")]
    assert sorted(r.address for r in tips) == sorted(members)  # everyone once, offered twice
    assert {(r.body, r.priority, r.incident_id, r.channel) for r in tips} == {
        ("【示例县】暴雨提示", 1, 7, "console")
    }
    assert {r.key for r in tips} == {f"tip:7:{p}" for p in members}


def test_an_unknown_phone_region_is_refused_before_any_row_is_read() -> None:
    with pytest.raises(ConfigError, match="unknown phone region 'ZZ'"):
        load_audience(ROOT / "config" / "rosters" / "demo_audience.csv", "ZZ")
