"""Warnings, incidents and their transitions, applied so a crash loses nothing.

A transition is a decision (open, upgrade, update, downgrade, lift) followed by
work (ask people, tell them, alert the duty officer, tip the public, publish CAP).
``apply_changes`` writes the decision — the incident's new state and a row in
``incident_events`` — in one transaction, together with the warning that caused
it: a crash before the commit leaves no trace (the feed's validators are saved
only after, so the next poll brings the warning again), a crash after it leaves
the event without ``done_at``. Every follow-up is idempotent (outbox keys,
requests unique per person and level, CAP documents per event), so
``unfinished`` events are simply followed up again, and ``followed_up`` closes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from warnbot.model import Incident, Level, LevelPolicy
from warnbot.model import Warning as CapWarning
from warnbot.store.ladder import incident_of, policy_json
from warnbot.store.sql import Base, insert_ignore
from warnbot.store.tables import incident_events, incidents, warnings

KINDS = ("open", "upgrade", "update", "downgrade", "lift")


@dataclass(frozen=True)
class Change:
    """One transition to apply: ``draft`` for an open, ``incident_id`` otherwise.
    ``detail`` carries what its follow-up needs beyond the incident (JSON)."""

    kind: str
    level: Level
    reason: str
    source: str
    incident_id: int | None = None
    draft: Incident | None = None
    warning_key: str | None = None
    policy: LevelPolicy | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Applied:
    """A transition whose decision is stored, with the incident as it now stands."""

    event_id: int
    kind: str
    incident: Incident
    reason: str
    source: str
    detail: Mapping[str, Any] = field(default_factory=dict)


class IncidentStore(Base):
    """Mixed into ``Store``."""

    async def apply_changes(
        self,
        changes: Sequence[Change],
        now: datetime,
        warning: tuple[str, CapWarning] | None = None,
    ) -> list[Applied] | None:
        """Record ``warning`` (feed, warning) and apply ``changes``, in one transaction.
        None when the warning was seen before: it was decided on already, and nothing
        is applied. A change to an incident no longer open applies nothing."""
        async with self.engine.begin() as conn:
            if warning is not None and not await _record_warning(conn, *warning, now):
                return None
            applied = [await _apply(conn, c, now) for c in changes]
        return [a for a in applied if a is not None]

    async def followed_up(self, event_id: int, now: datetime) -> None:
        """Every follow-up of the event is done."""
        await self._update(incident_events, incident_events.c.id == event_id, done_at=now)

    async def unfinished(self, before: datetime) -> list[Applied]:
        """Events decided before ``before`` whose follow-ups never finished (a crash, or
        a store outage mid-way), oldest first."""
        query = (
            sa.select(incident_events, incidents)
            .join(incidents, incidents.c.id == incident_events.c.incident_id)
            .where(incident_events.c.done_at.is_(None), incident_events.c.at < before)
            .order_by(incident_events.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_applied(r) for r in rows]

    async def record_warning(self, feed: str, w: CapWarning, now: datetime) -> bool:
        """Remember a warning; False when this sender+identifier was seen before."""
        async with self.engine.begin() as conn:
            return await _record_warning(conn, feed, w, now)

    async def open_incident(self, draft: Incident, warning_key: str | None) -> Incident:
        """Store a new incident; ``draft.id`` is ignored and the stored one returned.
        ValueError when an incident of its key is open already."""
        async with self.engine.begin() as conn:
            incident = await _insert_incident(conn, draft, warning_key)
        if incident is None:
            raise ValueError(f"an incident {draft.key!r} is open already")
        return incident

    async def follow(
        self,
        incident_id: int,
        level: Level,
        warning_key: str | None,
        policy: LevelPolicy | None = None,
    ) -> None:
        """Set the level (and the warning a later CAP Update or Cancel references; an
        upgrade's new policy): see ``_follow``."""
        async with self.engine.begin() as conn:
            await _follow(conn, incident_id, level, warning_key, policy)

    async def lift(self, incident_id: int, now: datetime) -> None:
        """Close an incident (解除): its open requests stop escalating."""
        async with self.engine.begin() as conn:
            await _lift(conn, incident_id, now)

    async def warning_expiries(self, keys: Iterable[str]) -> dict[str, datetime | None]:
        """When each warning (by ``sender,identifier``) expires, for the ones we have."""
        pairs = [k.split(",", 1) for k in keys if "," in k]
        if not pairs:
            return {}
        match = sa.tuple_(warnings.c.sender, warnings.c.identifier).in_([tuple(p) for p in pairs])
        query = sa.select(warnings.c.sender, warnings.c.identifier, warnings.c.expires).where(match)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {f"{s},{i}": e for s, i, e in rows}

    async def open_incidents(self) -> list[tuple[Incident, str | None]]:
        """Open incidents with the key of the warning that opened each."""
        query = sa.select(incidents).where(incidents.c.status == "open")
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings()
            return [(incident_of(r), r["warning_key"]) for r in rows]

    async def incident(self, incident_id: int) -> Incident | None:
        query = sa.select(incidents).where(incidents.c.id == incident_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().one_or_none()
            return incident_of(row) if row else None


async def _apply(conn: AsyncConnection, c: Change, now: datetime) -> Applied | None:
    if c.kind not in KINDS:
        raise ValueError(f"unknown transition {c.kind!r} (known: {', '.join(KINDS)})")
    if c.kind == "open":
        assert c.draft is not None, "an open carries its draft"
        opened = await _insert_incident(conn, c.draft, c.warning_key)
        if opened is None:  # another decision opened this key first
            instead = await _raced(conn, c)
            return await _apply(conn, instead, now) if instead else None
        incident, previous = opened, None
    else:
        assert c.incident_id is not None, "a transition names its incident"
        before = await _open_row(conn, c.incident_id)
        if before is None:
            return None  # lifted meanwhile (a feed's Cancel and an officer's lift, say)
        previous = Level(before["level"])
        if _moot(c, previous):
            return None  # a racing decision moved it there already
        if c.kind == "lift":
            await _lift(conn, c.incident_id, now)
        else:
            await _follow(conn, c.incident_id, c.level, c.warning_key, c.policy)
        incident = incident_of(await _row(conn, c.incident_id))
    event_id = await _insert_event(conn, c, incident, previous, now)
    return Applied(event_id, c.kind, incident, c.reason, c.source, dict(c.detail))


def _moot(c: Change, previous: Level) -> bool:
    """An upgrade that would not raise the level, or a downgrade that would not lower it."""
    if c.kind == "upgrade":
        return not c.level.outranks(previous)
    return c.kind == "downgrade" and not previous.outranks(c.level)


async def _record_warning(conn: AsyncConnection, feed: str, w: CapWarning, now: datetime) -> bool:
    row = {
        "feed": feed,
        "sender": w.sender,
        "identifier": w.identifier,
        "msg_type": w.msg_type,
        "event": w.event[:300],
        "sent": w.sent,
        "expires": w.expires,
        "received_at": now,
    }
    result = await conn.execute(insert_ignore(conn, warnings).values(row))
    return bool(result.rowcount)


async def _insert_incident(
    conn: AsyncConnection, draft: Incident, warning_key: str | None
) -> Incident | None:
    """The stored incident, or None when one of its key is open already (the unique
    index on open keys: on PostgreSQL a racing insert waits for the first to commit)."""
    values = {f.name: getattr(draft, f.name) for f in dataclasses.fields(draft)}
    values.pop("id")
    values.update(level=int(draft.level), policy=policy_json(draft.policy), warning_key=warning_key)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(incidents)
        .values(values)
        .on_conflict_do_nothing(index_elements=["key"], index_where=incidents.c.status == "open")
        .returning(incidents.c.id)
    )
    new_id = (await conn.execute(stmt)).scalar_one_or_none()
    return None if new_id is None else dataclasses.replace(draft, id=int(new_id))


async def _raced(conn: AsyncConnection, c: Change) -> Change | None:
    """An open that lost the race for its key to another decision: an upgrade of the
    incident that won when it asks for a higher level, else nothing (the open one
    already asks for as much). Either way nobody is asked twice."""
    assert c.draft is not None
    query = sa.select(incidents.c.id, incidents.c.level).where(
        incidents.c.key == c.draft.key, incidents.c.status == "open"
    )
    row = (await conn.execute(query)).one_or_none()
    if row is None or not c.level.outranks(Level(row.level)):
        return None
    return dataclasses.replace(
        c, kind="upgrade", incident_id=row.id, draft=None, policy=c.draft.policy
    )


async def _follow(
    conn: AsyncConnection,
    incident_id: int,
    level: Level,
    warning_key: str | None,
    policy: LevelPolicy | None,
) -> None:
    """Set the level and, when a warning moved it, the warning a later CAP Update or
    Cancel will reference (readings move the level without touching the chain).
    An upgrade freezes the new level's policy onto the incident; the requests
    already made keep the tier policy frozen onto each of them."""
    values: dict[str, Any] = {"level": int(level)}
    if warning_key is not None:
        values["warning_key"] = warning_key
    if policy is not None:
        values["policy"] = policy_json(policy)
    await conn.execute(incidents.update().where(incidents.c.id == incident_id).values(values))


async def _lift(conn: AsyncConnection, incident_id: int, now: datetime) -> None:
    stmt = incidents.update().where(incidents.c.id == incident_id)
    await conn.execute(stmt.values(status="lifted", lifted_at=now))


async def _open_row(conn: AsyncConnection, incident_id: int) -> Any:
    """The incident's row, locked for this transaction, when it is still open."""
    query = (
        sa.select(incidents)
        .where(incidents.c.id == incident_id, incidents.c.status == "open")
        .with_for_update()
    )
    return (await conn.execute(query)).mappings().one_or_none()


async def _row(conn: AsyncConnection, incident_id: int) -> Any:
    query = sa.select(incidents).where(incidents.c.id == incident_id)
    return (await conn.execute(query)).mappings().one()


async def _insert_event(
    conn: AsyncConnection, c: Change, incident: Incident, previous: Level | None, now: datetime
) -> int:
    values = {
        "incident_id": incident.id,
        "kind": c.kind,
        "level": c.level.value,
        "previous_level": previous.value if previous is not None else None,
        "reason": c.reason[:4000],
        "source": c.source[:200],
        "warning_key": c.warning_key[:300] if c.warning_key else None,
        "at": now,
        "detail": dict(c.detail) or None,
    }
    stmt = incident_events.insert().values(values).returning(incident_events.c.id)
    return int((await conn.execute(stmt)).scalar_one())


def _applied(r: Any) -> Applied:
    m = r._mapping
    e = incident_events.c
    return Applied(
        m[e.id],
        m[e.kind],
        incident_of({c.name: m[c] for c in incidents.c}),
        m[e.reason],
        m[e.source],
        m[e.detail] or {},
    )
