"""The roster's part of the store: chat ids kept with each person, migration 0005 both ways."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from tests.conftest import ROOT
from warnbot.rosters import load
from warnbot.store import Store
from warnbot.store.db import alembic_config

PEOPLE = load(ROOT / "config" / "rosters" / "demo_roster.xlsx")


async def test_a_synced_roster_comes_back_with_its_chat_ids_and_second_phones(store: Store) -> None:
    await store.sync_roster(PEOPLE)
    back = {p.key: p for p in await store.roster()}
    assert back == {p.key: p for p in PEOPLE}
    assert back["C01"].chat_ids == (("wecom", "lin.xiaoqing"),)
    assert back["X02"].chat_ids == ()
    assert await store.responder_for_phone("+8617000001302") == "T02"


async def test_migration_0005_goes_down_to_0004_and_up_again(store: Store) -> None:
    def tables(conn: sa.Connection) -> set[str]:
        return set(sa.inspect(conn).get_table_names())

    def columns(conn: sa.Connection) -> set[str]:
        return {c["name"] for c in sa.inspect(conn).get_columns("responders")}

    async with store.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0004"))
        assert not {"audiences", "audience_members"} & await conn.run_sync(tables)
        assert "chat_ids" not in await conn.run_sync(columns)
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))
        assert {"audiences", "audience_members"} <= await conn.run_sync(tables)
        assert "chat_ids" in await conn.run_sync(columns)
    await store.replace_audience("a", {"+8613800138001": "449901"}, "t", _now())


def _now() -> datetime:

    return datetime.now(UTC)
