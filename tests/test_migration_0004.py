"""Migration 0004 on both engines: requests asked before it get their incident's level,
and it goes down and up again cleanly."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from tests.conftest import T0
from warnbot.store import db
from warnbot.store.tables import metadata


async def downgrade_to(engine: sa.ext.asyncio.AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(db.alembic_config(c), revision))


async def test_0004_gives_old_requests_their_incidents_level_and_downgrades(db_url: str) -> None:
    engine = db.create_engine(db_url)
    try:
        await db.migrate(engine)  # a fresh SQLite file, or the shared PostgreSQL database
        await empty(engine)
        await downgrade_to(engine, "0003")
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO incidents (id, key, hazard, region_code, level, status, headline,"
                    " policy, drill, source, opened_at) VALUES (7, 'k', '暴雨', '449901', 2, "
                    "'open', 'h', '{}', false, 't', :t)"
                ),
                {"t": T0},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO requests (incident_id, responder_key, tier, reply_code, status,"
                    " sent_at, deadline) VALUES (7, 'V01', 'village', '1', 'pending', :t, :t)"
                ),
                {"t": T0},
            )
        await db.migrate(engine)
        async with engine.connect() as conn:
            level = (await conn.execute(sa.text("SELECT level FROM requests"))).scalar_one()
        assert level == 2
        await downgrade_to(engine, "0003")
        async with engine.connect() as conn:
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in sa.inspect(c).get_columns("requests")}
            )
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert "level" not in columns and "answers" not in tables
        await db.migrate(engine)
    finally:
        await empty(engine)
        await engine.dispose()


async def empty(engine: sa.ext.asyncio.AsyncEngine) -> None:
    """No rows: the shared PostgreSQL database is left as the store fixture expects."""
    async with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(table.delete())
