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

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from warnbot.model import Message
from warnbot.store.tables import outbox

# one value per batch; converted once through the column's own type
_SHARED = ("status", "attempts", "next_attempt_at", "created_at")
_PER_ROW = ("key", "channel", "address", "body", "incident_id", "responder_key")
_PER_ROW += ("mentions", "ack_token", "priority")


async def enqueue_many(conn: AsyncConnection, messages: Sequence[Message], now: datetime) -> None:
    """Insert ``messages`` into the outbox inside the caller's transaction; a key
    already there is left as it is."""
    from warnbot.store.sql import insert_ignore

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
