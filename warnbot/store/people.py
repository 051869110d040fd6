"""The people part of the store beyond responders: public audiences 受众.

An audience is a large opt-in list of residents' numbers by region, for public
tip SMS 提示短信. One district sent 300,000 for one typhoon, so an import is a
bulk load (PostgreSQL ``COPY``; one prepared ``executemany`` on SQLite) inside
one transaction — a failed import leaves the old list whole — and reading is a
stream of batches in number order (keyset pagination), never one huge result.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from warnbot import regions
from warnbot.model import Message
from warnbot.store.sql import Base, enqueue
from warnbot.store.tables import audience_members, audiences

_MEMBER_COLUMNS = ["audience_id", "phone", "region_code"]
_members_of = audience_members.c.audience_id == audiences.c.id


class AudienceStore(Base):
    """Methods the audience import and the tip-SMS fan-out need."""

    async def replace_audience(
        self, name: str, members: Mapping[str, str], source: str, now: datetime
    ) -> int:
        """Make audience ``name`` exactly ``members`` (E.164 phone → region code), in one
        transaction. Returns how many numbers it now holds.

        The new list goes in under a fresh audience id and the old one is deleted after:
        PostgreSQL's COPY then never checks its keys against the rows just deleted,
        which halves a re-import."""
        async with self.engine.begin() as conn:
            old = await conn.execute(
                sa.select(audiences.c.id).where(audiences.c.name == name).with_for_update()
            )
            old_id = old.scalar_one_or_none()
            staged = f"(importing {uuid.uuid4().hex})"  # unique until renamed below
            insert = audiences.insert().values(name=staged, source=source[:500], imported_at=now)
            new_id = int((await conn.execute(insert.returning(audiences.c.id))).scalar_one())
            await bulk_insert_members(conn, [(new_id, p, c) for p, c in members.items()])
            if old_id is not None:
                await conn.execute(
                    audience_members.delete().where(audience_members.c.audience_id == old_id)
                )
                await conn.execute(audiences.delete().where(audiences.c.id == old_id))
            await conn.execute(audiences.update().where(audiences.c.id == new_id).values(name=name))
        return len(members)

    async def audience_sizes(self) -> dict[str, int]:
        """Each audience with how many numbers it holds."""
        query = (
            sa.select(audiences.c.name, sa.func.count(audience_members.c.phone))
            .select_from(audiences.outerjoin(audience_members, _members_of))
            .group_by(audiences.c.name)
            .order_by(audiences.c.name)
        )
        async with self.engine.connect() as conn:
            return {n: int(c) for n, c in (await conn.execute(query)).all()}

    async def enqueue_tips(
        self,
        name: str,
        region_codes: Iterable[str],
        compose: Callable[[list[str]], list[Message]],
        now: datetime,
        batch_size: int = 5000,
    ) -> int:
        """Stream audience ``name``'s numbers in ``region_codes`` and enqueue what
        ``compose`` makes of each batch (``audience.tip_messages``), one transaction a
        batch. Keys are per (incident, number), so running it again after a crash
        enqueues only what is missing. Returns how many messages were offered."""
        offered = 0
        async for batch in self.audience_numbers(name, region_codes, batch_size):
            messages = compose(batch)
            async with self.engine.begin() as conn:
                await enqueue(conn, messages, now)
            offered += len(messages)
        return offered

    async def audience_count(self, name: str, region_codes: Iterable[str]) -> int:
        """How many numbers ``audience_numbers`` would give: a blast's size, before it."""
        chosen = _members_in(name, region_codes)
        if chosen is None:
            return 0
        query = sa.select(sa.func.count()).select_from(
            audience_members.join(audiences, _members_of)
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query.where(chosen))).scalar_one())

    async def audience_numbers(
        self, name: str, region_codes: Iterable[str], batch_size: int = 5000
    ) -> AsyncIterator[list[str]]:
        """The numbers of audience ``name`` in ``region_codes`` or any region inside them,
        in batches of up to ``batch_size``, each number once, in number order."""
        chosen = _members_in(name, region_codes)
        if chosen is None:
            return
        query = (
            sa.select(audience_members.c.phone)
            .join(audiences, _members_of)
            .where(chosen)
            .order_by(audience_members.c.phone)
            .limit(batch_size)
        )
        last = ""
        while True:
            async with self.engine.connect() as conn:
                batch = list(
                    (await conn.execute(query.where(audience_members.c.phone > last))).scalars()
                )
            if not batch:
                return
            yield batch
            last = batch[-1]


def _members_in(name: str, region_codes: Iterable[str]) -> sa.ColumnElement[bool] | None:
    """Members of audience ``name`` in ``region_codes`` or any region inside them."""
    prefixes = sorted({regions.prefix(c) for c in region_codes})
    if not prefixes:
        return None
    inside = sa.or_(*(audience_members.c.region_code.startswith(p) for p in prefixes))
    return sa.and_(audiences.c.name == name, inside)


async def bulk_insert_members(conn: AsyncConnection, rows: list[tuple[int, str, str]]) -> None:
    """Insert (audience_id, phone, region_code) rows inside the caller's transaction by
    the engine's fastest path: COPY on PostgreSQL, the driver's executemany on SQLite
    (SQLAlchemy's per-row parameter processing is most of an ORM-less insert's cost)."""
    if not rows:
        return
    raw = (await conn.get_raw_connection()).driver_connection
    if conn.dialect.name == "postgresql":
        await raw.copy_records_to_table(  # type: ignore[union-attr]
            audience_members.name, records=rows, columns=_MEMBER_COLUMNS
        )
        return
    sql = f"INSERT INTO {audience_members.name} ({', '.join(_MEMBER_COLUMNS)}) VALUES (?, ?, ?)"
    await raw.executemany(sql, rows)  # type: ignore[union-attr]
