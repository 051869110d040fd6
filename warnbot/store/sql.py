"""Small SQL helpers shared by the store's modules."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from warnbot.model import Message
from warnbot.store.tables import outbox

BULK_ROWS = 500


def insert_ignore(conn: AsyncConnection, table: sa.Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for the engine at hand."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


class Base:
    """What every part of the store shares: the engine, a write transaction that
    takes turns on SQLite, and a one-statement update."""

    engine: AsyncEngine
    _turns: asyncio.Lock | None = None

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (``engine.begin()``). On SQLite this process's writers
        that use it take turns on an asyncio lock: SQLite admits one writer, and the
        others wait in its busy handler, which polls with sleeps of up to 100 ms — 32
        webhooks recording answers at once waited over a second (p99, measured by
        ``bench/ack_intake.py``). PostgreSQL locks rows, so there it is only a
        transaction. Never nest one in another: the lock is not re-entrant."""
        if self.engine.dialect.name != "sqlite":
            async with self.engine.begin() as conn:
                yield conn
            return
        if self._turns is None:
            self._turns = asyncio.Lock()
        async with self._turns, self.engine.begin() as conn:
            yield conn

    async def _update(self, table: sa.Table, where: Any, **values: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(table.update().where(where).values(**values))


async def enqueue(conn: AsyncConnection, messages: Sequence[Message], now: datetime) -> None:
    """Put messages in the outbox inside the caller's transaction; a key already
    there is left as it is, so deciding to send twice sends once."""
    if len(messages) >= BULK_ROWS:  # a blast: see warnbot.store.bulk
        from warnbot.store.bulk import enqueue_many

        await enqueue_many(conn, messages, now)
        return
    rows = [
        {
            "key": m.key,
            "channel": m.channel,
            "address": m.to,
            "body": m.body,
            "incident_id": m.incident_id,
            "responder_key": m.responder_key,
            "mentions": list(m.mentions) or None,
            "ack_token": m.ack_token,
            "priority": m.priority,
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for m in messages
    ]
    if rows:
        await conn.execute(insert_ignore(conn, outbox), rows)
