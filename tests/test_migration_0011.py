"""Migration 0011 on both engines: the index of requests by person goes up, down and up."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from warnbot.store import db


async def _to(engine: sa.ext.asyncio.AsyncEngine, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(db.alembic_config(c), revision))


async def _indexes(engine: sa.ext.asyncio.AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        found = await conn.run_sync(lambda c: sa.inspect(c).get_indexes("requests"))
    return {str(i["name"]) for i in found}


async def test_0011_indexes_requests_by_person_and_downgrades(db_url: str) -> None:
    engine = db.create_engine(db_url)
    try:
        await db.migrate(engine)
        assert "ix_requests_responder_key" in await _indexes(engine)
        await _to(engine, "0010")
        assert "ix_requests_responder_key" not in await _indexes(engine)
        await db.migrate(engine)
        assert "ix_requests_responder_key" in await _indexes(engine)
    finally:
        await engine.dispose()
