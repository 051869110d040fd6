"""What ``/metrics`` reads, without scanning whole tables at every scrape.

Counts that only grow are folded into ``metric_totals`` once, and a high-water
mark per source (``metric_marks``) says how far: acks (and their time to
confirm) as soon as they are recorded, since an ack row never changes; outbox
rows once ``SETTLE_S`` old, since a provider's delivery report comes within
that. A scrape folds what is new past the marks (at most ``FOLD_ROWS`` a time),
then reads the totals plus the unsettled outbox rows — work in proportion to
the last hours, never to the whole history. Several processes share the totals:
a fold moves its mark by compare-and-set in the same transaction as its sums, so
rows are never counted twice.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from warnbot.store.sql import Base, insert_ignore
from warnbot.store.tables import acks, incidents, metric_marks, metric_totals, outbox, requests

SETTLE_S = 6 * 3600.0
FOLD_ROWS = 50_000
# Seconds from asking a person to their answer: a village head answers in minutes.
CONFIRM_BUCKETS_S = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0)
_OUTCOME = sa.func.coalesce(outbox.c.provider_status, outbox.c.status)


@dataclass
class Figures:
    """Everything a scrape reports that comes from the outbox, acks and incidents."""

    messages: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, outcome)
    acks: Counter[str] = field(default_factory=Counter)  # path → n
    # tier → per-bucket counts (not cumulative; the last is +Inf), and the sum of seconds
    confirm_buckets: dict[str, list[int]] = field(default_factory=dict)
    confirm_sum_s: Counter[str] = field(default_factory=Counter)
    outbox_depth: dict[str, int] = field(default_factory=dict)
    open_incidents: int = 0


def bucket_of(seconds: float) -> int:
    """The index of the first bucket ``seconds`` fits in (len(buckets) for +Inf)."""
    return bisect.bisect_left(CONFIRM_BUCKETS_S, seconds)


class MetricStore(Base):
    """Mixed into ``ConsoleStore``."""

    async def metric_figures(self, now: datetime) -> Figures:
        await self._fold_acks()
        await self._fold_outbox(now)
        figures = await self._totals()
        async with self.engine.connect() as conn:
            query = sa.select(metric_marks.c.last_id).where(metric_marks.c.name == "outbox")
            mark = int((await conn.execute(query)).scalar() or 0)
            recent = sa.select(outbox.c.channel, _OUTCOME, sa.func.count()).where(
                outbox.c.id > mark
            )
            for channel, outcome, n in await conn.execute(
                recent.group_by(outbox.c.channel, _OUTCOME)
            ):
                figures.messages[(channel, outcome)] += int(n)
            waiting = sa.select(outbox.c.status, sa.func.count()).where(
                outbox.c.status.in_(("queued", "sending"))
            )
            depth = await conn.execute(waiting.group_by(outbox.c.status))
            figures.outbox_depth = {s: int(n) for s, n in depth}
            opened = sa.select(sa.func.count()).where(incidents.c.status == "open")
            figures.open_incidents = int((await conn.execute(opened)).scalar_one())
        return figures

    async def _fold_acks(self) -> None:
        async with self.engine.begin() as conn:
            last = await _mark(conn, "acks")
            query = (
                sa.select(acks.c.id, acks.c.path, requests.c.tier, acks.c.received_at)
                .add_columns(requests.c.sent_at)
                .join(requests, requests.c.id == acks.c.request_id)
                .where(acks.c.id > last)
                .order_by(acks.c.id)
                .limit(FOLD_ROWS)
            )
            rows = (await conn.execute(query)).all()
            if not rows or not await _advance(conn, "acks", last, rows[-1][0]):
                return
            sums: Counter[tuple[str, str]] = Counter()
            for _, path, tier, received_at, sent_at in rows:
                seconds = (received_at - sent_at).total_seconds()
                sums[("acks", path)] += 1
                sums[("confirm_bucket", f"{tier}|{bucket_of(seconds)}")] += 1
                sums[("confirm_sum_s", tier)] += seconds
            await _add(conn, sums)

    async def _fold_outbox(self, now: datetime) -> None:
        settled = now - timedelta(seconds=SETTLE_S)
        async with self.engine.begin() as conn:
            last = await _mark(conn, "outbox")
            newer = (outbox.c.id > last, outbox.c.id <= last + FOLD_ROWS)
            boundary = (
                await conn.execute(
                    sa.select(sa.func.max(outbox.c.id)).where(*newer, outbox.c.created_at < settled)
                )
            ).scalar()
            if boundary is None or not await _advance(conn, "outbox", last, int(boundary)):
                return
            rows = await conn.execute(
                sa.select(outbox.c.channel, _OUTCOME, sa.func.count())
                .where(outbox.c.id > last, outbox.c.id <= boundary)
                .group_by(outbox.c.channel, _OUTCOME)
            )
            await _add(conn, Counter({("messages", f"{c}|{o}"): int(n) for c, o, n in rows}))

    async def _totals(self) -> Figures:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(metric_totals))).all()
        figures = Figures()
        for name, labels, value in rows:
            if name == "messages":
                channel, _, outcome = labels.partition("|")
                figures.messages[(channel, outcome)] += int(value)
            elif name == "acks":
                figures.acks[labels] += int(value)
            elif name == "confirm_sum_s":
                figures.confirm_sum_s[labels] += value
            elif name == "confirm_bucket":
                tier, _, index = labels.partition("|")
                empty = [0] * (len(CONFIRM_BUCKETS_S) + 1)
                figures.confirm_buckets.setdefault(tier, empty)[int(index)] += int(value)
        return figures


async def _mark(conn: AsyncConnection, name: str) -> int:
    await conn.execute(insert_ignore(conn, metric_marks).values(name=name, last_id=0))
    query = sa.select(metric_marks.c.last_id).where(metric_marks.c.name == name)
    return int((await conn.execute(query)).scalar_one())


async def _advance(conn: AsyncConnection, name: str, last: int, to: int) -> bool:
    """Move the mark from ``last`` to ``to``; False when another scrape moved it first
    (its fold then counted these rows)."""
    moved = await conn.execute(
        metric_marks.update()
        .where(metric_marks.c.name == name, metric_marks.c.last_id == last)
        .values(last_id=to)
    )
    return bool(moved.rowcount)


async def _add(conn: AsyncConnection, sums: Mapping[tuple[str, str], float]) -> None:
    for (name, labels), value in sums.items():
        where = (metric_totals.c.name == name, metric_totals.c.labels == labels)
        done = await conn.execute(
            metric_totals.update().where(*where).values(value=metric_totals.c.value + value)
        )
        if not done.rowcount:
            await conn.execute(metric_totals.insert().values(name=name, labels=labels, value=value))
