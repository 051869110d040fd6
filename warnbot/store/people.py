"""The people part of the store beyond responders: public audiences 受众.

An audience is a large opt-in list of residents' numbers by region, for public
tip SMS 提示短信. One district sent 300,000 for one typhoon, so an import is a
bulk load (PostgreSQL ``COPY``; one prepared ``executemany`` on SQLite) inside
one transaction — a failed import leaves the old list whole — and reading is a
stream of batches in number order (keyset pagination), never one huge result.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from warnbot import regions
from warnbot.store.sql import Base
from warnbot.store.tables import audience_members, audiences

_MEMBER_COLUMNS = ["audience_id", "phone", "region_code"]
_members_of = audience_members.c.audience_id == audiences.c.id


class AudienceStore(Base):
    """Methods the audience import and the tip-SMS fan-out need."""

    async def replace_audience(
        self, name: str, members: Mapping[str, str], source: str, now: datetime
    ) -> int:
        """Make audience ``name`` exactly ``members`` (E.164 phone → region code), in one
        transaction. Returns how many numbers it now holds."""
        async with self.engine.begin() as conn:
            audience_id = await _audience_id(conn, name, source, now)
            await conn.execute(
                audience_members.delete().where(audience_members.c.audience_id == audience_id)
            )
            rows = [(audience_id, phone, code) for phone, code in members.items()]
            await bulk_insert_members(conn, rows)
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

    async def audience_numbers(
        self, name: str, region_codes: Iterable[str], batch_size: int = 5000
    ) -> AsyncIterator[list[str]]:
        """The numbers of audience ``name`` in ``region_codes`` or any region inside them,
        in batches of up to ``batch_size``, each number once, in number order."""
        prefixes = sorted({regions.prefix(c) for c in region_codes})
        if not prefixes:
            return
        inside = sa.or_(*(audience_members.c.region_code.startswith(p) for p in prefixes))
        query = (
            sa.select(audience_members.c.phone)
            .join(audiences, _members_of)
            .where(audiences.c.name == name, inside)
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


async def _audience_id(conn: AsyncConnection, name: str, source: str, now: datetime) -> int:
    query = sa.select(audiences.c.id).where(audiences.c.name == name).with_for_update()
    found = (await conn.execute(query)).scalar_one_or_none()
    values = {"source": source[:500], "imported_at": now}
    if found is not None:
        await conn.execute(audiences.update().where(audiences.c.id == found).values(values))
        return int(found)
    insert = audiences.insert().values(name=name, **values).returning(audiences.c.id)
    return int((await conn.execute(insert)).scalar_one())


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
