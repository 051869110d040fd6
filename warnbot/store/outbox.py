"""The outbox part of the store: claiming, results, rate buckets (delivery reports:
:mod:`warnbot.store.delivery`).

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite has one
writer at a time), lane 0 — responsible persons and escalations — always
before lane 1, public tip SMS. A row found still ``sending`` after its lease
is *in doubt*: its send may have reached the provider before a crash, so the
dispatcher reconciles it instead of sending blindly again.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from warnbot.model import Level, Message, Receipt
from warnbot.store.delivery import DeliveryStore, Report
from warnbot.store.sql import enqueue, insert_ignore
from warnbot.store.tables import UTCDateTime, address_failures, incidents, outbox, rate_buckets


@dataclass(frozen=True)
class OutboxRow:
    """A claimed outbox row; ``attempts`` counts this one, ``in_doubt`` says a
    previous attempt may have reached the provider."""

    id: int
    key: str
    channel: str
    address: str
    body: str
    incident_id: int | None
    responder_key: str | None
    attempts: int
    mentions: list[str] | None
    ack_token: str | None
    created_at: datetime
    in_doubt: bool = False
    priority: int = 0  # the lane: 0 asks and escalations, 1 public tips

    def message(self, validity_s: int | None = None) -> Message:
        return Message(
            self.key,
            self.channel,
            self.address,
            self.body,
            self.incident_id,
            self.responder_key,
            tuple(self.mentions or ()),
            self.ack_token,
            self.priority,
            validity_s,
        )


_CLAIMED = [f.name for f in dataclasses.fields(OutboxRow)]
_SENT = {"status": "sent", "claimed_until": None, "error": None, "in_doubt": False}
# SQLite: the same one statement, the (id, provider id) pairs as one JSON array
_SENT_SQLITE = sa.text(
    "UPDATE outbox SET status = 'sent', sent_at = :now, claimed_until = NULL, error = NULL,"
    " in_doubt = 0, provider_id = v.pid"
    " FROM (SELECT value ->> 0 AS id, value ->> 1 AS pid FROM json_each(:pairs)) AS v"
    " WHERE outbox.id = v.id"
).bindparams(sa.bindparam("now", type_=UTCDateTime))
_SENT_PG = sa.text(
    "UPDATE outbox SET status = 'sent', sent_at = :now, claimed_until = NULL, error = NULL,"
    " in_doubt = false, provider_id = v.pid"
    " FROM unnest(CAST(:ids AS integer[]), CAST(:pids AS varchar[])) AS v(id, pid)"
    " WHERE outbox.id = v.id"
).bindparams(sa.bindparam("now", type_=UTCDateTime))


class OutboxStore(DeliveryStore):
    """Methods the dispatcher and the delivery webhooks need."""

    async def enqueue(self, messages: Sequence[Message], now: datetime) -> None:
        """Put messages in the outbox; a key already there is left as it is."""
        async with self.engine.begin() as conn:
            await enqueue(conn, messages, now)

    async def claim(
        self, limit: int, now: datetime, lease_s: float, tips_limit: int | None = None
    ) -> list[OutboxRow]:
        """Take up to ``limit`` due rows for sending, lane 0 first; other workers skip them.
        ``tips_limit`` caps the lane-1 rows among them (a rate-limited blast takes only
        what it can send soon, so the next claim comes soon for any new ask)."""
        if tips_limit is None:
            return await self._claim(limit, now, lease_s, None)
        asks = await self._claim(limit, now, lease_s, 0)
        room = min(tips_limit, limit - len(asks))
        tips = await self._claim(room, now, lease_s, 1) if room > 0 else []
        return asks + tips

    async def _claim(
        self, limit: int, now: datetime, lease_s: float, lane: int | None
    ) -> list[OutboxRow]:
        due = sa.or_(
            sa.and_(outbox.c.status == "queued", outbox.c.next_attempt_at <= now),
            sa.and_(outbox.c.status == "sending", outbox.c.claimed_until < now),
        )
        if lane is not None:
            due = sa.and_(due, outbox.c.priority == 0 if lane == 0 else outbox.c.priority >= 1)
        ids = (
            sa.select(outbox.c.id)
            .where(due)
            .order_by(outbox.c.priority, outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        # One statement, so concurrent claims on SQLite cannot share a row; SET sees the
        # old status, which is how a lapsed "sending" row is known to be in doubt.
        stmt = (
            outbox.update()
            .where(outbox.c.id.in_(ids.scalar_subquery()))
            .values(
                in_doubt=sa.or_(outbox.c.status == "sending", outbox.c.in_doubt),
                status="sending",
                claimed_until=now + timedelta(seconds=lease_s),
                attempts=outbox.c.attempts + 1,
            )
            .returning(*(outbox.c[name] for name in _CLAIMED))
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(stmt)).all()  # in _CLAIMED order: OutboxRow's fields
        return sorted((OutboxRow(*r) for r in rows), key=lambda r: r.id)

    async def mark_sent(self, row_id: int, receipt: Receipt, now: datetime) -> list[Report]:
        return await self.mark_sent_many([(row_id, receipt)], now)

    async def mark_sent_many(
        self, sent: Sequence[tuple[int, Receipt]], now: datetime
    ) -> list[Report]:
        """Record a batch of accepted sends in one statement and one commit, then apply
        the delivery reports that came before it (returned: the caller acts on them).
        Profiled: a CASE over the batch cost more CPU to build than the sends it
        recorded, and an executemany's per-row bind processing as much again, so
        PostgreSQL gets two arrays to ``unnest`` and SQLite one JSON array."""
        if not sent:
            return []
        pids = [r.provider_id for _, r in sent]
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                ids = [row_id for row_id, _ in sent]
                await conn.execute(_SENT_PG, {"ids": ids, "pids": pids, "now": now})
            else:
                pairs = json.dumps([[row_id, r.provider_id] for row_id, r in sent])
                await conn.execute(_SENT_SQLITE, {"pairs": pairs, "now": now})
        return await self.settle_early(pids)  # after the commit: see warnbot.store.delivery

    async def mark_failed(
        self, row_id: int, error: str, retry_at: datetime | None, in_doubt: bool = False
    ) -> None:
        """Record a failed send; with ``retry_at`` the row goes back in the queue, and
        ``in_doubt`` (the provider may have taken it) has it reconciled before a resend."""
        values: dict[str, object] = {
            "status": "queued" if retry_at else "failed",
            "error": error[:2000],
            "claimed_until": None,
            "in_doubt": in_doubt,
        }
        if retry_at:
            values["next_attempt_at"] = retry_at
        await self._update(outbox, outbox.c.id == row_id, **values)

    async def row_by_provider_id(self, provider_id: str) -> OutboxRow | None:
        query = sa.select(*(outbox.c[name] for name in _CLAIMED)).where(
            outbox.c.provider_id == provider_id
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return OutboxRow(**row) if row else None

    async def incident_levels(self, ids: Iterable[int]) -> dict[int, Level]:
        """The current level of each incident, for the messages of a batch."""
        query = sa.select(incidents.c.id, incidents.c.level).where(incidents.c.id.in_(list(ids)))
        async with self.engine.connect() as conn:
            return {i: Level(level) for i, level in (await conn.execute(query)).all()}

    async def record_address_failure(
        self,
        responder_key: str,
        channel: str,
        address: str,
        code: str | None,
        reason: str,
        now: datetime,
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                address_failures.insert().values(
                    responder_key=responder_key,
                    channel=channel,
                    address=address,
                    code=code,
                    reason=reason[:1000],
                    at=now,
                )
            )

    async def blocked_addresses(self, responder_key: str) -> set[tuple[str, str]]:
        """(channel, address) pairs that failed for good for this person: a landline
        refused by SMS is still called."""
        query = sa.select(address_failures.c.channel, address_failures.c.address).where(
            address_failures.c.responder_key == responder_key
        )
        async with self.engine.connect() as conn:
            return {(c, a) for c, a in (await conn.execute(query)).all()}

    async def tried_addresses(self, key: str, up_to_id: int) -> set[tuple[str, str]]:
        """(channel, address) pairs the message ``key`` (a failover chain's first key)
        went to, itself and its failovers (``key|alt:…``), up to row ``up_to_id``: what
        was tried before that row failed, so deciding its failover twice decides the same."""
        chain = sa.or_(outbox.c.key == key, outbox.c.key.startswith(f"{key}|alt:", autoescape=True))
        query = sa.select(outbox.c.channel, outbox.c.address).where(chain, outbox.c.id <= up_to_id)
        async with self.engine.connect() as conn:
            return {(c, a) for c, a in (await conn.execute(query)).all()}

    async def failed_addresses(self, responder_key: str) -> set[str]:
        query = sa.select(address_failures.c.address).where(
            address_failures.c.responder_key == responder_key
        )
        async with self.engine.connect() as conn:
            return set((await conn.execute(query)).scalars())

    async def outbox_counts(self) -> dict[str, int]:
        query = sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
        async with self.engine.connect() as conn:
            return {s: int(n) for s, n in (await conn.execute(query)).all()}

    async def queued_texts(self, channel: str, limit: int = 1000) -> tuple[int, dict[str, int]]:
        """How many messages wait on ``channel``, and its ``limit`` most common texts with
        how many carry each (a blast is one text: counted exactly)."""
        waiting = sa.and_(outbox.c.channel == channel, outbox.c.status.in_(("queued", "sending")))
        count = sa.select(sa.func.count()).where(waiting)
        n = sa.func.count().label("n")
        texts = (
            sa.select(outbox.c.body, n).where(waiting).group_by(outbox.c.body).order_by(n.desc())
        ).limit(limit)
        async with self.engine.connect() as conn:
            total = int((await conn.execute(count)).scalar_one())
            found = {body: int(k) for body, k in (await conn.execute(texts)).all()} if total else {}
        return total, found

    async def sent_messages(self, incident_id: int) -> list[Message]:
        """Messages the providers accepted for an incident, oldest first."""
        query = (
            sa.select(outbox)
            .where(outbox.c.incident_id == incident_id, outbox.c.status == "sent")
            .order_by(outbox.c.sent_at)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings()
            return [
                Message(
                    r["key"],
                    r["channel"],
                    r["address"],
                    r["body"],
                    r["incident_id"],
                    r["responder_key"],
                )
                for r in rows
            ]

    async def release(self, row_id: int, at: datetime) -> None:
        """Hand a claimed row back unsent (it waited for the rate limit): not an attempt."""
        await self._update(
            outbox,
            outbox.c.id == row_id,
            status="queued",
            next_attempt_at=at,
            claimed_until=None,
            attempts=outbox.c.attempts - 1,
        )

    async def release_many(self, row_ids: Sequence[int], at: datetime) -> None:
        """Hand claimed rows back unsent (their slots lay beyond the claim): not attempts."""
        if not row_ids:
            return
        await self._update(
            outbox,
            outbox.c.id.in_(list(row_ids)),
            status="queued",
            next_attempt_at=at,
            claimed_until=None,
            attempts=outbox.c.attempts - 1,
        )

    async def reserve(
        self,
        bucket: str | Sequence[str],
        span_s: float,
        horizon_s: float,
        now_s: float | None = None,
        lead_s: float = 0.0,
    ) -> float | None:
        """Book the next ``span_s`` seconds of a rate limit shared by every process:
        when the booking starts, in the shared clock's seconds since the epoch (see
        ``clock_offset_s``), or None when it would start more than ``horizon_s``
        ahead (nothing booked then).

        Bookings follow each other back to back, whenever senders ask, so the long-run
        rate is exact and no two processes ever share a moment; there is no burst
        allowance. "Now" is the database's clock (PostgreSQL ``clock_timestamp()``;
        SQLite lives on one machine, whose clock every process shares), so processes on
        machines whose clocks disagree still book one timeline. ``now_s`` fixes the
        clock, for tests. An idle bucket's booking starts ``lead_s`` from now: the
        time a sender needs between booking and sending. One statement, so concurrent
        bookings never overlap.

        Several buckets (an account and a sender) are booked together: the span starts
        when the busiest of them is free, and each is booked to its end. Their rows are
        locked in name order first (``FOR UPDATE``; on SQLite the first write takes the
        database's one write lock), so concurrent bookings of overlapping sets wait for
        each other instead of interleaving.
        """
        if not isinstance(bucket, str):
            if len(bucket) != 1:
                return await self._reserve_all(sorted(bucket), span_s, horizon_s, now_s, lead_s)
            bucket = bucket[0]
        async with self.engine.begin() as conn:
            now = _clock(conn, now_s)
            soonest = now + lead_s
            start = sa.case((rate_buckets.c.tat_s > soonest, rate_buckets.c.tat_s), else_=soonest)
            stmt = (
                rate_buckets.update()
                .where(rate_buckets.c.name == bucket, start - now <= horizon_s)
                .values(tat_s=start + span_s)
                .returning(rate_buckets.c.tat_s - span_s)
            )
            await conn.execute(insert_ignore(conn, rate_buckets).values(name=bucket, tat_s=0.0))
            start = (await conn.execute(stmt)).scalar_one_or_none()
        return None if start is None else float(start)

    async def _reserve_all(
        self, names: list[str], span_s: float, horizon_s: float, now_s: float | None, lead_s: float
    ) -> float | None:
        table = rate_buckets
        async with self.engine.begin() as conn:
            await conn.execute(
                insert_ignore(conn, table), [{"name": n, "tat_s": 0.0} for n in names]
            )
            locked = sa.select(table.c.tat_s).where(table.c.name.in_(names)).order_by(table.c.name)
            busy = max(float(t) for t in (await conn.execute(locked.with_for_update())).scalars())
            now = float((await conn.execute(sa.select(_clock(conn, now_s)))).scalar_one())
            start = max(busy, now + lead_s)
            if start - now > horizon_s:
                return None
            await conn.execute(
                table.update().where(table.c.name.in_(names)).values(tat_s=start + span_s)
            )
        return start

    async def clock_offset_s(self, max_age_s: float = 60.0) -> float:
        """How far the shared clock of ``reserve`` is ahead of this process's
        ``time.time()``. PostgreSQL's is measured as NTP does, from the quickest of a
        few round trips (within half of it: a fraction of a millisecond on a LAN), and
        again after ``max_age_s``; SQLite's is this machine's: 0."""
        if self.engine.dialect.name != "postgresql":
            return 0.0
        cached: tuple[float, float] | None = getattr(self, "_clock_offset", None)
        if cached is not None and time.monotonic() - cached[1] < max_age_s:
            return cached[0]
        query = sa.select(_clock(None, None, "postgresql"))
        samples = []
        async with self.engine.connect() as conn:
            for _ in range(5):
                before = time.time()
                db_s = float((await conn.execute(query)).scalar_one())
                after = time.time()
                samples.append((after - before, db_s - (before + after) / 2))
        offset_s = min(samples)[1]
        self._clock_offset = (offset_s, time.monotonic())
        return offset_s


def _clock(conn: AsyncConnection | None, now_s: float | None, dialect: str = "") -> Any:
    """The shared clock in seconds since the epoch, as SQL."""
    if now_s is not None:
        return sa.literal(now_s, sa.Float)
    if (conn.dialect.name if conn is not None else dialect) == "postgresql":
        epoch = sa.extract("epoch", sa.func.clock_timestamp())
        return sa.cast(epoch, sa.Float)
    return sa.literal(time.time(), sa.Float)
