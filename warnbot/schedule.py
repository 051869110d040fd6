"""APScheduler jobs: poll feeds, drain the outbox, tick the escalation clock.

Each job runs at most once at a time and a slow run is not queued up behind
itself (``max_instances=1, coalesce=True``). A job that raises is logged and
runs again at its next time: one bad feed must not stop the others. ``stop``
lets runs in flight finish, so shutdown never cuts a transaction in half.
"""

from __future__ import annotations

import asyncio
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


class Schedule:
    """The scheduler with every job of ``app``, and the job runs in flight."""

    def __init__(self, app: App, session: aiohttp.ClientSession) -> None:
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.running: set[asyncio.Task[Any]] = set()
        now = datetime.now(UTC)
        for feed in app.settings.feeds:
            if feed.transport == "poll":
                job = poller.Poller(app, feed, session)
                self._every(f"feed:{feed.name}", feed.interval_s, now, job, feed.jitter)
        self._every("outbox", app.settings.outbox_tick_s, now, functools.partial(drain, app))
        self._every("escalation", app.settings.escalation_tick_s, now, app.tick)
        self._every("expiry", app.settings.escalation_tick_s, now, app.lift_lapsed)
        self._every("feed-watch", app.settings.feed_watch_s, now, app.report_silent_feeds)

    def start(self) -> None:
        self.scheduler.start()

    async def stop(self, timeout_s: float = 10.0) -> None:
        """No new runs; wait up to ``timeout_s`` for the current ones."""
        self.scheduler.shutdown(wait=False)
        if self.running:
            await asyncio.wait(set(self.running), timeout=timeout_s)

    def _every(
        self,
        job_id: str,
        seconds: float,
        first: datetime,
        job: Callable[[], Awaitable[Any]],
        jitter_s: float = 0.0,
    ) -> None:
        self.scheduler.add_job(
            self._guarded(job_id, job),
            "interval",
            seconds=seconds,
            jitter=jitter_s or None,
            id=job_id,
            next_run_time=first,
            max_instances=1,
            coalesce=True,
        )

    def _guarded(
        self, job_id: str, job: Callable[[], Awaitable[Any]]
    ) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            task = asyncio.current_task()
            if task is not None:
                self.running.add(task)
            try:
                await job()
            except Exception:
                _log.exception("job_failed", job=job_id)
            finally:
                if task is not None:
                    self.running.discard(task)

        return run


async def drain(app: App) -> None:
    """Pump until the due part of the outbox is empty."""
    await app.dispatcher().drain()
