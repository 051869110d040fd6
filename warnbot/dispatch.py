"""Dispatch: drain the outbox through the channels.

Messages reach the outbox before any provider is called (``store.enqueue``
inside the transaction that decided to send them). A pump claims due rows —
responsible persons before public tip SMS — and for each: a row *in doubt*
(its previous attempt may have reached the provider before a crash) is first
looked up at the provider where the channel can; a rate-limited row waits for
its slot in the buckets every process shares (:mod:`warnbot.slots`); then the
send, and its result:
sent; retried later with exponential backoff and jitter; or failed for good,
which the caller's ``on_permanent`` hears about (to record it on the person and
try their next address). Delivery reports that arrived before a batch's provider
ids were recorded are applied as they are recorded, and ``on_report`` hears of
each (see :mod:`warnbot.store.delivery`).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from warnbot import log
from warnbot.channels import Channel
from warnbot.errors import SendError
from warnbot.model import Message, Receipt
from warnbot.settings import RateLimit
from warnbot.slots import Bucket, Slot, book, buckets_for
from warnbot.sms import segments
from warnbot.store import OutboxRow, Report, Store

_log = log.get(__name__)
MAX_ATTEMPTS = 8
LEASE_S = 60.0  # default claim lease (``claim_lease_s``): a row claimed longer is in doubt
SETTLE_S = 30.0
# How far ahead public tips (lane 1) book rate-limited slots: an ask arriving during a
# blast waits behind at most this much of it per overlapping pump, not half a minute.
TIPS_AHEAD_S = 0.5


@runtime_checkable
class Reconciling(Protocol):
    """A channel that can tell whether the provider already took a message."""

    async def reconcile(self, message: Message, since: datetime) -> Receipt | None: ...


@dataclass
class Dispatcher:
    """What a pump needs; ``on_permanent`` is called for each message that failed for good
    or ran out of retries (then with a retryable error)."""

    store: Store
    channels: Mapping[str, Channel]
    clock: Callable[[], datetime]
    limits: Mapping[str, RateLimit] = field(default_factory=dict)
    on_permanent: Callable[[OutboxRow, SendError], Awaitable[None]] | None = None
    # a delivery report that came before its send was recorded, now applied
    on_report: Callable[[Report], Awaitable[None]] | None = None
    # shared by every pump of this dispatcher: overlapping pumps never exceed it together
    concurrency: int = 20
    max_attempts: int = MAX_ATTEMPTS
    backoff_scale: float = 1.0  # tests shrink the backoff; Retry-After is always honoured
    # a send whose answer was lost waits this long, so that a request the provider is
    # still working on has landed before reconciliation looks for it
    settle_s: float = SETTLE_S
    tips_ahead_s: float = TIPS_AHEAD_S
    # how long a claim holds a row: a sender must finish within it, or the row is in doubt
    # and another process reconciles it; slots are booked at most half of it ahead
    lease_s: float = LEASE_S
    # each claimed row's validity period (warnbot.validity.for_rows); None: channel default
    validity: Callable[[list[OutboxRow]], Awaitable[Mapping[int, int | None]]] | None = None
    _gate: asyncio.Semaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._gate = asyncio.Semaphore(self.concurrency)

    async def pump(self, batch: int = 100) -> int:
        """Send one batch of due messages; returns how many were claimed. Accepted sends
        are recorded together at the end (a crash before that leaves them in doubt,
        which reconciliation settles); delivery reports that came before are applied
        then, and passed to ``on_report``."""
        rows = await self.store.claim(batch, self.clock(), self.lease_s, self._tips_limit())
        slots = await self._book(rows)
        validity = await self.validity(rows) if self.validity and rows else {}
        queue = iter(sorted((r for r in rows if r.id in slots), key=lambda r: _when(slots[r.id])))
        sent: list[tuple[int, Receipt]] = []

        async def worker() -> None:  # a few workers, not a task per row: CPU is the limit
            for row in queue:
                receipt = await self.send(row, slots[row.id], validity.get(row.id))
                if receipt is not None:
                    sent.append((row.id, receipt))

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(slots)))))
        early = await self.store.mark_sent_many(sent, self.clock())
        for report in early:
            _log.info("early_report", provider_id=report.provider_id, status=report.status)
            if self.on_report is not None:
                await self.on_report(report)
        return len(rows)

    async def drain(self, batch: int = 400, loops: int = 2) -> int:
        """Pump until nothing is due; ``loops`` pumps overlap, so one batch's store
        round trips (claim, results) run while another batch is on the wire."""

        async def loop() -> int:
            total = 0
            while claimed := await self.pump(batch):
                total += claimed
            return total

        return sum(await asyncio.gather(*(loop() for _ in range(loops))))

    async def send(
        self, row: OutboxRow, slot: Slot | None = None, validity_s: int | None = None
    ) -> Receipt | None:
        """Send one claimed row at its booked ``slot`` (None: no rate limit);
        the receipt when the provider took it (the caller records it), None when it
        failed or went back to the queue (recorded here). Only provider calls hold the
        concurrency gate: a sender waiting for its slot does not keep others from theirs."""
        channel = self.channels.get(row.channel)
        if row.in_doubt:
            async with self._gate:
                receipt = await self._reconciled(channel, row)
            if receipt is not None:
                _log.info("reconciled", **_ids(row), provider_id=receipt.provider_id)
                return receipt
        buckets = self._buckets(row)
        parts = segments(row.body) if buckets else 1
        while buckets and slot is not None:
            if (delay_s := slot.at - time.time()) > 0:
                await asyncio.sleep(delay_s)
            async with self._gate:
                wait_s = slot.run.admit(slot.at, parts)
                if wait_s == 0.0:
                    return await self._deliver(channel, row, validity_s)
            if wait_s is not None:  # a late sender before it: keep the second within the rate
                await asyncio.sleep(wait_s)
                continue
            # Woken too late near the end of its run: the next run (maybe another
            # process's) starts on time, so sending now would crowd it. Book anew.
            _log.info("slot_missed", **_ids(row), late_ms=round((time.time() - slot.at) * 1e3))
            booked = await book(self.store, buckets, [row], self.lease_s / 2)
            if row.id not in booked:
                await self.store.release(row.id, self.clock() + timedelta(seconds=self.lease_s / 4))
                return None
            slot = booked[row.id]
        async with self._gate:
            return await self._deliver(channel, row, validity_s)

    async def _deliver(
        self, channel: Channel | None, row: OutboxRow, validity_s: int | None = None
    ) -> Receipt | None:
        try:
            receipt = await _deliver(channel, row, validity_s)
        except SendError as e:
            await self._failed(row, e)
            return None
        _log.info("sent", **_ids(row), provider_id=receipt.provider_id)
        return receipt

    async def _reconciled(self, channel: Channel | None, row: OutboxRow) -> Receipt | None:
        """The provider's record of this message, if the channel can look and it has one."""
        if not isinstance(channel, Reconciling):
            return None
        try:
            return await channel.reconcile(row.message(), row.created_at)
        except SendError as e:
            _log.warning("reconcile_failed", message_id=row.id, error=e.reason)
            return None

    def _tips_limit(self) -> int | None:
        """How many tips one pump may claim when an account limit applies: what the
        fastest sends in ``tips_ahead_s`` (the rest would only be handed back)."""
        rates = [limit.rate_per_s for limit in self.limits.values() if not limit.per_sender]
        return max(1, math.ceil(max(rates) * self.tips_ahead_s)) if rates else None

    def _buckets(self, row: OutboxRow) -> tuple[Bucket, ...]:
        return buckets_for(self.limits, row.channel, row.address) if self.limits else ()

    async def _book(self, rows: list[OutboxRow]) -> dict[int, Slot | None]:
        """Each row's moment to send (None when no limit applies), booked from the
        shared buckets its channel draws on, in a few round trips per set of buckets;
        rows whose slots lie beyond the claim go back to the queue and are left out."""
        slots: dict[int, Slot | None] = {}
        groups: dict[tuple[int, tuple[str, ...]], list[OutboxRow]] = {}
        sets: dict[tuple[str, ...], tuple[Bucket, ...]] = {}
        for row in sorted(rows, key=lambda r: r.priority):  # asks book their slots first
            buckets = self._buckets(row)
            keys = tuple(b.key for b in buckets)
            sets[keys] = buckets
            groups.setdefault((min(row.priority, 1), keys), []).append(row)
        for (lane, keys), group in sorted(groups.items(), key=lambda g: g[0][0]):
            if not keys:
                slots.update(dict.fromkeys(r.id for r in group))
                continue
            ahead_s = self.tips_ahead_s if lane else None
            booked = await book(self.store, sets[keys], group, self.lease_s / 2, ahead_s)
            slots.update(booked)
            late = [r.id for r in group if r.id not in booked]
            back_s = self.tips_ahead_s if lane else self.lease_s / 4
            await self.store.release_many(late, self.clock() + timedelta(seconds=back_s))
        return slots

    def _retry_at(self, row: OutboxRow, e: SendError) -> datetime | None:
        """When to try a failed row again: after our backoff, never before the provider's
        ``Retry-After``, and for a send in doubt not before it has settled; None when the
        error is permanent or the attempts are spent."""
        if not e.retryable or row.attempts >= self.max_attempts:
            return None
        delay_s = max(
            backoff_s(row.attempts) * self.backoff_scale,
            e.retry_after_s or 0.0,
            self.settle_s if e.in_doubt else 0.0,
        )
        return self.clock() + timedelta(seconds=delay_s)

    async def _failed(self, row: OutboxRow, e: SendError) -> None:
        """Back in the queue, or failed: for good, or ``exhausted`` (a transient error
        that outlasted the retries: ``on_permanent`` sees ``e.retryable`` and fails over
        without holding the address against the person)."""
        retry_at = self._retry_at(row, e)
        reason = e.reason
        if retry_at is None and e.retryable:
            reason = f"exhausted after {row.attempts} attempts: {e.reason}"
        _log.warning("send_failed", **_ids(row), error=reason, code=e.code, retry_at=retry_at)
        await self.store.mark_failed(row.id, reason, retry_at, e.in_doubt)
        if retry_at is None and self.on_permanent is not None:
            await self.on_permanent(row, e)


def _ids(row: OutboxRow) -> dict[str, object]:
    """What every log line of a send carries: never the address or the text."""
    return {
        "message_id": row.id,
        "incident_id": row.incident_id,
        "responder": row.responder_key,
        "channel": row.channel,
    }


def _when(slot: Slot | None) -> float:
    return slot.at if slot is not None else 0.0


def backoff_s(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds before retry number ``attempts``: 2, 4, 8 … capped at 300, ±50% jitter."""
    return float(min(2.0**attempts, 300.0) * (0.5 + rng()))


async def _deliver(channel: Channel | None, row: OutboxRow, validity_s: int | None) -> Receipt:
    """Send, turning every failure into a SendError: a channel bug must not strand
    the row in ``sending``."""
    if channel is None:
        raise SendError(f"no channel named {row.channel!r} is configured", retryable=False)
    try:
        return await channel.send(row.message(validity_s))
    except SendError:
        raise
    except Exception as e:
        _log.exception("send_crashed", message_id=row.id)
        raise SendError(f"unexpected {type(e).__name__}: {e}", retryable=True) from e
