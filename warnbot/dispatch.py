"""Dispatch: drain the outbox through the channels.

Messages reach the outbox before any provider is called (``store.enqueue``
inside the transaction that decided to send them). A pump claims due rows,
sends them concurrently, and records each result: sent, retry later with
exponential backoff and jitter, or failed for good.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from warnbot import log
from warnbot.channels import Channel
from warnbot.errors import SendError
from warnbot.model import Receipt
from warnbot.store import OutboxRow, Store

_log = log.get(__name__)
MAX_ATTEMPTS = 8
LEASE_S = 60.0


def backoff_s(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds before retry number ``attempts``: 2, 4, 8 … capped at 300, ±50% jitter."""
    return min(2.0**attempts, 300.0) * (0.5 + rng())


async def pump(
    store: Store,
    channels: Mapping[str, Channel],
    now: Callable[[], datetime],
    batch: int = 100,
    concurrency: int = 20,
) -> int:
    """Send one batch of due messages; returns how many were claimed."""
    rows = await store.claim(batch, now(), LEASE_S)
    limit = asyncio.Semaphore(concurrency)

    async def one(row: OutboxRow) -> None:
        async with limit:
            await _send(store, channels, row, now)

    await asyncio.gather(*(one(r) for r in rows))
    return len(rows)


async def _send(
    store: Store, channels: Mapping[str, Channel], row: OutboxRow, now: Callable[[], datetime]
) -> None:
    bound = _log.bind(
        message_id=row.id,
        incident_id=row.incident_id,
        responder=row.responder_key,
        channel=row.channel,
    )
    try:
        receipt = await _deliver(channels.get(row.channel), row)
    except SendError as e:
        retry_at = _retry_at(row, e, now())
        bound.warning("send_failed", error=e.reason, retry_at=retry_at)
        await store.mark_failed(row.id, e.reason, retry_at)
        return
    await store.mark_sent(row.id, receipt, now())
    bound.info("sent", provider_id=receipt.provider_id)


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
