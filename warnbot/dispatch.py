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
class Dispatcher:
    """What a pump needs; ``on_permanent`` is called for each message that failed for good."""

    store: Store
    channels: Mapping[str, Channel]
    clock: Callable[[], datetime]
    limits: Mapping[str, RateLimit] = field(default_factory=dict)
    on_permanent: Callable[[OutboxRow, SendError], Awaitable[None]] | None = None
    concurrency: int = 20

    async def pump(self, batch: int = 100) -> int:
        """Send one batch of due messages; returns how many were claimed. Accepted sends
        are recorded together at the end (a crash before that leaves them in doubt,
        which reconciliation settles)."""
        rows = await self.store.claim(batch, self.clock(), LEASE_S)
        gate = asyncio.Semaphore(self.concurrency)

        async def one(row: OutboxRow) -> tuple[int, Receipt] | None:
            async with gate:
                receipt = await self.send(row)
                return None if receipt is None else (row.id, receipt)

        done = await asyncio.gather(*(one(r) for r in rows))
        await self.store.mark_sent_many([d for d in done if d is not None], self.clock())
        return len(rows)

    async def send(self, row: OutboxRow) -> Receipt | None:
        """Send one claimed row; the receipt when the provider took it (the caller
        records it), None when it failed or went back to the queue (recorded here)."""
        bound = _log.bind(
            message_id=row.id,
            incident_id=row.incident_id,
            responder=row.responder_key,
            channel=row.channel,
        )
        channel = self.channels.get(row.channel)
        if row.in_doubt and (receipt := await self._reconciled(channel, row)):
            bound.info("reconciled", provider_id=receipt.provider_id)
            return receipt
        if not await self._tokens(row):
            return None
        try:
            receipt = await _deliver(channel, row)
        except SendError as e:
            await self._failed(row, e, bound)
            return None
        bound.info("sent", provider_id=receipt.provider_id)
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
        """Wait for the channel's rate limit; False when the wait would outlast the
        claim, in which case the row is handed back to the queue for later."""
        limit = self.limits.get(row.channel)
        if limit is None:
            return True
        n = float(segments(row.body)) if limit.per_segment else 1.0
        give_up = time.monotonic() + LEASE_S / 2
        while wait_s := await self.store.take_tokens(
            f"channel:{row.channel}", limit.rate_per_s, limit.capacity, n, self.clock()
        ):
            if time.monotonic() + wait_s > give_up:
                await self.store.release(row.id, self.clock() + timedelta(seconds=wait_s))
                return False
            await asyncio.sleep(wait_s)
        return True

    async def _failed(self, row: OutboxRow, e: SendError, bound: log.Logger) -> None:
        retry_at = _retry_at(row, e, self.clock())
        bound.warning("send_failed", error=e.reason, code=e.code, retry_at=retry_at)
        await self.store.mark_failed(row.id, e.reason, retry_at)
        if retry_at is None and self.on_permanent is not None:
            await self.on_permanent(row, e)


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
