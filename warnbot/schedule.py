"""APScheduler jobs: poll feeds, drain the outbox, tick the escalation clock.

Each job runs at most once at a time and a slow run is not queued up behind
itself (``max_instances=1, coalesce=True``). A job that raises is logged and
runs again at its next time: one bad feed must not stop the others.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from warnbot import log
from warnbot.app import App
from warnbot.ingest import poller

_log = log.get(__name__)


def build(app: App, session: aiohttp.ClientSession) -> AsyncIOScheduler:
    """A scheduler with every job of ``app``; the caller starts and stops it."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    now = datetime.now(UTC)
    for feed in app.settings.feeds:
        _every(scheduler, f"feed:{feed.name}", feed.interval_s, now,
               functools.partial(poller.poll, app, feed, session))
    _every(scheduler, "outbox", app.settings.outbox_tick_s, now, lambda: drain(app))
    _every(scheduler, "escalation", app.settings.escalation_tick_s, now, app.tick)
    return scheduler


async def drain(app: App, batch: int = 100) -> None:
    """Pump until the due part of the outbox is empty."""
    while await app.pump() >= batch:
        pass


def _every(scheduler: AsyncIOScheduler, job_id: str, seconds: float, first: datetime,
           job: Callable[[], Awaitable[Any]]) -> None:
    scheduler.add_job(_guarded(job_id, job), "interval", seconds=seconds, id=job_id,
                      next_run_time=first, max_instances=1, coalesce=True)


def _guarded(job_id: str, job: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await job()
        except Exception:
            _log.exception("job_failed", job=job_id)
    return run
