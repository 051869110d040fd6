"""Many outbox rows at once, for a fan-out of thousands (a public tip SMS blast).

A profile of 300,000 messages through the ordinary ``INSERT … ON CONFLICT DO
NOTHING`` showed most of the time in per-row bind processing: every row's
timestamps and JSON column converted again, though they are the same for the
whole batch. Here the statement is compiled once for the engine at hand, the
values shared by every row are converted once, and the rows go to the driver's
own ``executemany`` as plain tuples. Same rows, same conflict rule as
:func:`warnbot.store.sql.enqueue`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from warnbot.model import Message
from warnbot.store.tables import outbox

# one value per batch; converted once through the column's own type
_SHARED = ("status", "attempts", "next_attempt_at", "created_at")
_PER_ROW = (
    "key",
    "channel",
    "address",
    "body",
    "incident_id",
    "responder_key",
    "mentions",
    "ack_token",
    "priority",
)
# PostgreSQL: one statement per batch, the rows as arrays (executemany is a round of
# the protocol per row, ~3× slower here)
_PG_TYPES = ("varchar", "varchar", "varchar", "text", "int", "varchar", "text", "varchar", "int")
_PG = (
    "INSERT INTO outbox (key, channel, address, body, incident_id, responder_key, mentions,"
    " ack_token, priority, status, attempts, next_attempt_at, created_at)"
    " SELECT k, c, a, b, i, r, m::json, t, p::smallint, 'queued', 0, $10, $10"
    " FROM unnest("
    + ", ".join(f"${n + 1}::{t}[]" for n, t in enumerate(_PG_TYPES))
    + ") AS u(k, c, a, b, i, r, m, t, p) ON CONFLICT DO NOTHING"
)


async def enqueue_many(conn: AsyncConnection, messages: Sequence[Message], now: datetime) -> None:
    """Insert ``messages`` into the outbox inside the caller's transaction; a key
    already there is left as it is."""
    from warnbot.store.sql import insert_ignore

    if conn.dialect.name == "postgresql":
        await _pg_unnest(conn, messages, now)
        return
    dialect = conn.dialect
    columns = _PER_ROW + _SHARED
    compiled = insert_ignore(conn, outbox).compile(dialect=dialect, column_keys=list(columns))
    shared = {"status": "queued", "attempts": 0, "next_attempt_at": now, "created_at": now}
    converted = {k: _bind(k, v, dialect) for k, v in shared.items()}
    mentions_none = _bind("mentions", None, dialect)
    order = compiled.positiontup or list(columns)
    rows = []
    for m in messages:
        values: dict[str, Any] = {
            "key": m.key,
            "channel": m.channel,
            "address": m.to,
            "body": m.body,
            "incident_id": m.incident_id,
            "responder_key": m.responder_key,
            "mentions": _bind("mentions", list(m.mentions), dialect)
            if m.mentions
            else mentions_none,
            "ack_token": m.ack_token,
            "priority": m.priority,
            **converted,
        }
        rows.append(tuple(values[k] for k in order))
    if rows:
        await conn.exec_driver_sql(str(compiled), rows)


def _bind(column: str, value: Any, dialect: Any) -> Any:
    processor = outbox.c[column].type._cached_bind_processor(dialect)
    return processor(value) if processor else value


async def _pg_unnest(conn: AsyncConnection, messages: Sequence[Message], now: datetime) -> None:
    columns: list[list[Any]] = [
        [m.key for m in messages],
        [m.channel for m in messages],
        [m.to for m in messages],
        [m.body for m in messages],
        [m.incident_id for m in messages],
        [m.responder_key for m in messages],
        [
            json.dumps(list(m.mentions), ensure_ascii=False) if m.mentions else None
            for m in messages
        ],
        [m.ack_token for m in messages],
        [m.priority for m in messages],
    ]
    # through SQLAlchemy's adapter, so it runs inside the caller's transaction
    await conn.exec_driver_sql(_PG, (*columns, now))
