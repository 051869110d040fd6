"""Delivery reports: what a provider says later about a message it took.

Reports arrive in any order, and some arrive before the send they are about has
been recorded — a provider may call back while the sender still waits for its
answer, and the dispatcher records a batch's provider ids together at its end.
Such a report is *parked* in ``early_reports`` and applied when its id is
recorded. Neither side can miss the other: the webhook parks first and then
looks for the id, the sender records the id first and then looks for parked
reports, each in a transaction of its own, and whoever deletes a parked row
applies it (a DELETE takes it once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from warnbot.store.sql import Base, insert_ignore
from warnbot.store.tables import early_reports, outbox

# Delivery reports arrive in any order; a later stage never goes back.
STATUS_RANK = {
    "accepted": 1,
    "queued": 1,
    "scheduled": 1,
    "sending": 2,
    "sent": 3,
    "receiving": 3,
    "received": 4,
    "delivered": 5,
    "read": 5,
    "undelivered": 5,
    "failed": 5,
    "canceled": 5,
}
# The longest error code kept (Aliyun's receipt codes run to 23 characters).
ERROR_CHARS = 64
# A parked report whose id is never recorded (not ours, or its send was given up)
# is dropped after this long.
EARLY_KEEP_S = 86_400.0


@dataclass(frozen=True)
class Report:
    """One delivery report: the provider's id of the message, its status and error code."""

    provider_id: str
    status: str
    error: str | None = None


class DeliveryStore(Base):
    """Delivery reports on outbox rows, parked until their row is known."""

    async def record_delivery(
        self,
        provider_id: str,
        status: str,
        error: str | None,
        now: datetime | None = None,
        stand_in: str | None = None,
    ) -> bool:
        """Apply a provider's delivery report; True when it changed the row now. A stale
        or repeated one changes nothing; one whose id is not recorded yet is parked and
        returned by ``settle_early`` (from ``mark_sent_many``) once it is. A row recorded
        under ``stand_in`` (reconciled without the provider's id) takes ``provider_id``."""
        report = Report(provider_id, status[:16], error[:ERROR_CHARS] if error else None)
        async with self.engine.begin() as conn:
            if await _apply(conn, report):
                return True
            if await _known(conn, provider_id):
                return False
            if stand_in and await _adopt(conn, stand_in, provider_id):
                return await _apply(conn, report)
        async with self.engine.begin() as conn:
            await _park(conn, report, now or datetime.now(UTC))
        return bool(await self.settle_early([provider_id], recorded=False))

    async def settle_early(
        self, provider_ids: Sequence[str], recorded: bool = True
    ) -> list[Report]:
        """Apply the parked reports of ``provider_ids`` whose rows are recorded (all of
        them when ``recorded``: the caller has just committed them); the reports that
        changed a row, oldest stage first."""
        ids = [p for p in provider_ids if p]
        if not ids or not await self._any_parked():
            return []  # the common case, one cheap read: no report ever came early
        taken: sa.ColumnElement[bool] = early_reports.c.provider_id.in_(ids)
        if not recorded:
            taken = sa.and_(taken, early_reports.c.provider_id.in_(_recorded(ids)))
        stmt = early_reports.delete().where(taken).returning(*_REPORT_COLUMNS)
        async with self.engine.begin() as conn:
            parked = [Report(*row) for row in (await conn.execute(stmt)).all()]
            parked.sort(key=lambda r: STATUS_RANK.get(r.status, 0))
            return [r for r in parked if await _apply(conn, r)]

    async def _any_parked(self) -> bool:
        async with self.engine.connect() as conn:
            return (await conn.execute(_ANY_PARKED)).first() is not None

    async def delivery(self, row_key: str) -> tuple[str | None, str | None]:
        """The provider's last word on a message: (status, error code)."""
        query = sa.select(outbox.c.provider_status, outbox.c.provider_error).where(
            outbox.c.key == row_key
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).one_or_none()
        return (row[0], row[1]) if row else (None, None)

    async def parked_reports(self) -> list[Report]:
        """Reports waiting for their send to be recorded (for tests and ``status``)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(*_REPORT_COLUMNS))).all()
        return [Report(*row) for row in rows]


_REPORT_COLUMNS = (early_reports.c.provider_id, early_reports.c.status, early_reports.c.error)
_ANY_PARKED = sa.select(early_reports.c.provider_id).limit(1)


def _recorded(ids: list[str]) -> sa.Select[tuple[str | None]]:
    return sa.select(outbox.c.provider_id).where(outbox.c.provider_id.in_(ids))


async def _apply(conn: AsyncConnection, report: Report) -> bool:
    rank = STATUS_RANK.get(report.status, 0)
    current = sa.case(STATUS_RANK, value=outbox.c.provider_status, else_=0)
    stmt = (
        outbox.update()
        .where(
            outbox.c.provider_id == report.provider_id,
            sa.or_(outbox.c.provider_status.is_(None), current < rank),
        )
        .values(provider_status=report.status, provider_error=report.error)
    )
    return bool((await conn.execute(stmt)).rowcount)


async def _adopt(conn: AsyncConnection, stand_in: str, provider_id: str) -> bool:
    stmt = outbox.update().where(outbox.c.provider_id == stand_in).values(provider_id=provider_id)
    return bool((await conn.execute(stmt)).rowcount)


async def _known(conn: AsyncConnection, provider_id: str) -> bool:
    query = sa.select(sa.literal(1)).where(outbox.c.provider_id == provider_id).limit(1)
    return (await conn.execute(query)).first() is not None


async def _park(conn: AsyncConnection, report: Report, now: datetime) -> None:
    values = {
        "provider_id": report.provider_id,
        "status": report.status,
        "error": report.error,
        "received_at": now,
    }
    await conn.execute(insert_ignore(conn, early_reports).values(**values))
    stale = now - timedelta(seconds=EARLY_KEEP_S)
    await conn.execute(early_reports.delete().where(early_reports.c.received_at < stale))
