"""Dispatch: drain the outbox through the channels.

Messages reach the outbox before any provider is called (``store.enqueue``
inside the transaction that decided to send them). A pump claims due rows —
responsible persons before public tip SMS — and for each: a row *in doubt*
(its previous attempt may have reached the provider before a crash) is first
looked up at the provider where the channel can; a rate-limited channel waits
for tokens from a bucket every process shares; then the send, and its result:
sent; retried later with exponential backoff and jitter; or failed for good,
which the caller's ``on_permanent`` hears about (to record it on the person and
try their next address).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from warnbot import log
from warnbot.channels import Channel
from warnbot.errors import SendError
from warnbot.model import Message, Receipt
from warnbot.settings import RateLimit
from warnbot.sms import segments
from warnbot.store import OutboxRow, Store

_log = log.get(__name__)
MAX_ATTEMPTS = 8
LEASE_S = 60.0


@runtime_checkable
class Reconciling(Protocol):
    """A channel that can tell whether the provider already took a message."""

    async def reconcile(self, message: Message, since: datetime) -> Receipt | None: ...


@dataclass
class StartWindow:
    """The sends this process started in the last second, for one channel.

    Shared slots space sends exactly, but a sender that wakes late (a busy event
    loop) followed by one on time would put more than the rate into one second.
    So a send also waits until the process's own starts of the past second leave
    room for it: within a process no one-second window exceeds the rate.
    """

    starts: deque[tuple[float, float]] = field(default_factory=deque)  # (monotonic, cost)

    async def admit(self, cost: float, rate_per_s: float) -> None:
        if rate_per_s < 1:
            return  # slots over a second apart: no second can hold two
        room = math.floor(rate_per_s)
        cost = min(cost, room)
        while True:
            now = time.monotonic()
            while self.starts and self.starts[0][0] <= now - 1.0:
                self.starts.popleft()
            if sum(c for _, c in self.starts) + cost <= room:
                self.starts.append((now, cost))
                return
            await asyncio.sleep(self.starts[0][0] + 1.0 - now)


@dataclass
class Dispatcher:
    """What a pump needs; ``on_permanent`` is called for each message that failed for good."""

    store: Store
    channels: Mapping[str, Channel]
    clock: Callable[[], datetime]
    limits: Mapping[str, RateLimit] = field(default_factory=dict)
    on_permanent: Callable[[OutboxRow, SendError], Awaitable[None]] | None = None
    concurrency: int = 20
    # shared by every pump of this dispatcher: overlapping pumps never exceed it together
    # the actual send starts of this process per channel (see StartWindow); the app
    # keeps one dict for the life of the process, so it outlives each Dispatcher
    windows: dict[str, StartWindow] = field(default_factory=dict)
    _gate: asyncio.Semaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._gate = asyncio.Semaphore(self.concurrency)

    async def pump(self, batch: int = 100) -> int:
        """Send one batch of due messages; returns how many were claimed. Accepted sends
        are recorded together at the end (a crash before that leaves them in doubt,
        which reconciliation settles)."""
        rows = await self.store.claim(batch, self.clock(), LEASE_S)
        queue = iter(rows)
        sent: list[tuple[int, Receipt]] = []

        async def worker() -> None:  # a few workers, not a task per row: CPU is the limit
            for row in queue:
                async with self._gate:
                    receipt = await self.send(row)
                if receipt is not None:
                    sent.append((row.id, receipt))

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(rows)))))
        await self.store.mark_sent_many(sent, self.clock())
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

    async def send(self, row: OutboxRow) -> Receipt | None:
        """Send one claimed row; the receipt when the provider took it (the caller
        records it), None when it failed or went back to the queue (recorded here)."""
        channel = self.channels.get(row.channel)
        if row.in_doubt and (receipt := await self._reconciled(channel, row)):
            _log.info("reconciled", **_ids(row), provider_id=receipt.provider_id)
            return receipt
        if not await self._tokens(row):
            return None
        try:
            receipt = await _deliver(channel, row)
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

    async def _tokens(self, row: OutboxRow) -> bool:
        """Wait for the row's slot under the channel's rate limit; False when the slot
        would outlast the claim, in which case the row goes back to the queue."""
        limit = self.limits.get(row.channel)
        if limit is None:
            return True
        interval_s = 1.0 / limit.rate_per_s
        cost = float(segments(row.body)) if limit.per_segment else 1.0
        now = self.clock()
        wait_s = await self.store.reserve(
            f"channel:{row.channel}",
            interval_s,
            cost,
            (limit.capacity - 1) * interval_s,
            now.timestamp(),
            LEASE_S / 2,
        )
        if wait_s is None:
            await self.store.release(row.id, now + timedelta(seconds=LEASE_S / 4))
            return False
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        await self.windows.setdefault(row.channel, StartWindow()).admit(cost, limit.rate_per_s)
        return True

    async def _failed(self, row: OutboxRow, e: SendError) -> None:
        retry_at = _retry_at(row, e, self.clock())
        _log.warning("send_failed", **_ids(row), error=e.reason, code=e.code, retry_at=retry_at)
        await self.store.mark_failed(row.id, e.reason, retry_at)
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


def backoff_s(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds before retry number ``attempts``: 2, 4, 8 … capped at 300, ±50% jitter."""
    return float(min(2.0**attempts, 300.0) * (0.5 + rng()))


async def _deliver(channel: Channel | None, row: OutboxRow) -> Receipt:
    """Send, turning every failure into a SendError: a channel bug must not strand
    the row in ``sending``."""
    if channel is None:
        raise SendError(f"no channel named {row.channel!r} is configured", retryable=False)
    try:
        return await channel.send(row.message())
    except SendError:
        raise
    except Exception as e:
        _log.exception("send_crashed", message_id=row.id)
        raise SendError(f"unexpected {type(e).__name__}: {e}", retryable=True) from e


def _retry_at(row: OutboxRow, e: SendError, now: datetime) -> datetime | None:
    if not e.retryable or row.attempts >= MAX_ATTEMPTS:
        return None
    return now + timedelta(seconds=backoff_s(row.attempts))
