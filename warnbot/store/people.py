"""The people part of the store: the responder roster with its import versions, and
public audiences 受众.

The roster in the store is the one warnbot uses. Each import (the configured file
when its content changed, or ``warnbot roster import``) replaces it in one
transaction and raises its version; every process compares that version on a
cheap periodic check and reloads when it moved.

An audience is a large opt-in list of residents' numbers by region, for public
tip SMS 提示短信. One district sent 300,000 for one typhoon, so an import is a
bulk load (PostgreSQL ``COPY``; one prepared ``executemany`` on SQLite) inside
one transaction — a failed import leaves the old list whole — and a blast is one
``INSERT … SELECT`` from the audience into the outbox: the database fans out, and
the numbers never travel to Python and back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from warnbot import regions
from warnbot.model import Responder, TipBlast
from warnbot.store.imports import ImportState, Origin, read_state, record_import
from warnbot.store.sql import Base, insert_ignore
from warnbot.store.tables import (
    UTCDateTime,
    audience_members,
    audiences,
    opt_outs,
    outbox,
    responder_phones,
    responders,
)

ROSTER = "roster"


class RosterStore(Base):
    """The responder roster: replaced whole by each import, versioned."""

    async def sync_roster(self, people: Sequence[Responder]) -> None:
        """Make the stored roster equal ``people``; absent persons become inactive.
        Leaves the version alone: imports go through ``import_roster``."""
        async with self.engine.begin() as conn:
            await _sync_roster(conn, people)

    async def import_roster(
        self,
        people: Sequence[Responder],
        sha256: str,
        source: str,
        via: str,
        now: datetime,
        config_sha256: str | None = None,
    ) -> ImportState:
        """Replace the roster and raise its version, in one transaction. ``config_sha256``
        (for an import of the configured file) is remembered; other imports keep the one
        stored, so the file is not applied again until it changes."""
        origin = Origin(sha256, source, via, now, config_sha256)
        async with self.engine.begin() as conn:  # the version row's lock first: imports take turns
            state = await record_import(conn, ROSTER, origin)
            await _sync_roster(conn, people)
            return state

    async def roster_state(self) -> ImportState | None:
        """The roster's last import, or None before the first (one small row: cheap to
        read on every tick)."""
        async with self.engine.connect() as conn:
            return await read_state(conn, ROSTER)


async def _sync_roster(conn: AsyncConnection, people: Sequence[Responder]) -> None:
    await conn.execute(responders.update().values(active=False))
    for person in people:
        await _upsert_responder(conn, person)
    await conn.execute(responder_phones.delete())
    phones = [{"phone": p, "responder_key": r.key} for r in people for p in r.phones]
    if phones:
        await conn.execute(insert_ignore(conn, responder_phones), phones)


async def _upsert_responder(conn: AsyncConnection, p: Responder) -> None:
    values = {
        "name": p.name,
        "tier": p.tier.value,
        "region_code": p.region_code,
        "phones": list(p.phones),
        "roles": list(p.roles),
        "language": p.language,
        "superior": p.superior,
        "chat_ids": dict(p.chat_ids) or None,
        "active": True,
    }
    result = await conn.execute(responders.update().where(responders.c.key == p.key).values(values))
    if not result.rowcount:
        await conn.execute(responders.insert().values(key=p.key, **values))


_MEMBER_COLUMNS = ["audience_id", "phone", "region_code"]
_members_of = audience_members.c.audience_id == audiences.c.id


class AudienceStore(Base):
    """Methods the audience import and the tip-SMS fan-out need."""

    async def replace_audience(
        self,
        name: str,
        members: Mapping[str, str],
        source: str,
        now: datetime,
        include_opted_out: bool = False,
    ) -> int:
        """Make audience ``name`` exactly ``members`` (E.164 phone → region code), in one
        transaction, leaving out numbers that opted out (退订) — unless
        ``include_opted_out``: then they are taken back and their opt-out forgotten.
        Returns how many numbers it now holds.

        The new list goes in under a fresh audience id and the old one is deleted after:
        PostgreSQL's COPY then never checks its keys against the rows just deleted,
        which halves a re-import."""
        async with self.engine.begin() as conn:
            members = await _without_opted_out(conn, members, include_opted_out)
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

    async def opt_out(self, phone: str, now: datetime, via: str = "sms") -> int | None:
        """A resident's 退订: remove ``phone`` from every audience and remember it (with
        ``now``), in one transaction. Returns how many audiences it left, or None when
        the number is in no audience and never opted out (it is no resident's number)."""
        async with self.engine.begin() as conn:
            removed = (
                await conn.execute(
                    audience_members.delete().where(audience_members.c.phone == phone)
                )
            ).rowcount
            known = await conn.execute(sa.select(opt_outs.c.phone).where(opt_outs.c.phone == phone))
            if not removed and known.first() is None:
                return None
            values = {"opted_out_at": now, "via": via[:16]}
            updated = await conn.execute(
                opt_outs.update().where(opt_outs.c.phone == phone).values(values)
            )
            if not updated.rowcount:
                await conn.execute(opt_outs.insert().values(phone=phone, **values))
            return int(removed)

    async def opted_out(self, phone: str) -> datetime | None:
        """When ``phone`` opted out of public audiences, or None."""
        query = sa.select(opt_outs.c.opted_out_at).where(opt_outs.c.phone == phone)
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

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
        self, name: str, region_codes: Iterable[str], blast: TipBlast, now: datetime
    ) -> int:
        """Queue ``blast`` to every number of audience ``name`` in ``region_codes`` (or a
        region inside them) with one ``INSERT … SELECT`` in the database: 300,000 rows
        never cross into Python. One transaction, so a crash queues all or nothing;
        keys already queued are left as they are, so running it again after a crash or
        for an overlapping region queues only what is missing. Returns how many it queued."""
        chosen = _members_in(name, region_codes)
        if chosen is None:
            return 0
        async with self.engine.begin() as conn:
            rows = _tip_rows(blast, now, chosen)
            stmt = insert_ignore(conn, outbox).from_select(_TIP_COLUMNS, rows)
            return int((await conn.execute(stmt)).rowcount or 0)

    async def audience_count(self, name: str, region_codes: Iterable[str]) -> int:
        """How many numbers a tip blast to ``region_codes`` reaches: its size, before it."""
        chosen = _members_in(name, region_codes)
        if chosen is None:
            return 0
        query = sa.select(sa.func.count()).select_from(
            audience_members.join(audiences, _members_of)
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query.where(chosen))).scalar_one())


_TIP_COLUMNS = [
    "key",
    "channel",
    "address",
    "body",
    "incident_id",
    "priority",
    "status",
    "in_doubt",
    "attempts",
    "next_attempt_at",
    "created_at",
]


def _tip_rows(blast: TipBlast, now: datetime, chosen: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """One outbox row per chosen member, built by the database."""
    phone = audience_members.c.phone
    return (
        sa.select(
            sa.literal(blast.key_prefix, sa.String) + phone,
            sa.literal(blast.channel, sa.String),
            phone,
            sa.literal(blast.body, sa.Text),
            sa.literal(blast.incident_id, sa.Integer),
            sa.literal(blast.priority, sa.SmallInteger),
            sa.literal("queued", sa.String),
            sa.false(),
            sa.literal(0, sa.Integer),
            sa.literal(now, UTCDateTime),
            sa.literal(now, UTCDateTime),
        )
        .select_from(audience_members.join(audiences, _members_of))
        .where(chosen)
    )


def _members_in(name: str, region_codes: Iterable[str]) -> sa.ColumnElement[bool] | None:
    """Members of audience ``name`` in ``region_codes`` or any region inside them."""
    prefixes = sorted({regions.prefix(c) for c in region_codes})
    if not prefixes:
        return None
    inside = sa.or_(*(audience_members.c.region_code.startswith(p) for p in prefixes))
    return sa.and_(audiences.c.name == name, inside)


async def _without_opted_out(
    conn: AsyncConnection, members: Mapping[str, str], include: bool
) -> Mapping[str, str]:
    """``members`` less the numbers that opted out; with ``include``, all of them, and
    their opt-outs are cleared (the import said to take them back)."""
    gone = set((await conn.execute(sa.select(opt_outs.c.phone))).scalars()) & members.keys()
    if not gone:
        return members
    if include:
        await conn.execute(opt_outs.delete().where(opt_outs.c.phone.in_(sorted(gone))))
        return members
    return {p: c for p, c in members.items() if p not in gone}


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
