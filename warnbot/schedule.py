"""APScheduler jobs: poll feeds, drain the outbox, tick the escalation clock.

Each job runs at most once at a time and a slow run is not queued up behind
itself (``max_instances=1, coalesce=True``). A job that raises is logged and
runs again at its next time: one bad feed must not stop the others. ``stop``
lets runs in flight finish, so shutdown never cuts a transaction in half; a run
still going after the grace time (a store that came back half-broken) is
cancelled, which rolls its transaction back: every job is idempotent, so the
next process up does that work again and nothing is lost.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import sqlalchemy.exc
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from warnbot import log
from warnbot.app import App
from warnbot.ingest import poller

_log = log.get(__name__)
EVERY_PROCESS = frozenset({"outbox", "refresh"})  # jobs each process runs, lease or not


class Schedule:
    """The scheduler with every job of ``app``, and the job runs in flight.

    Every process drains the outbox and refreshes its roster (and rota); the other
    jobs (pollers, the escalation clock, expiry, the feed watch) run only while this
    process holds the scheduler lease: ``lead`` adds them, ``follow`` removes them. Without
    ``leader=False`` the schedule leads from the start (one process, no lease).
    """

    def __init__(self, app: App, session: aiohttp.ClientSession, *, leader: bool = True) -> None:
        self.app, self.session = app, session
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.running: set[asyncio.Task[Any]] = set()
        self.leading = False
        now = datetime.now(UTC)
        self._every("outbox", app.settings.outbox_tick_s, now, functools.partial(drain, app))
        # every process answers SMS from the roster: each notices a newer import itself
        self._every("refresh", app.settings.escalation_tick_s, now, app.refresh)
        if leader:  # a single process (the demo, tests) leads from the start
            self.lead()

    def start(self) -> None:
        self.scheduler.start()

    def lead(self) -> None:
        """Add the jobs only the lease holder runs, due at once."""
        app, now = self.app, datetime.now(UTC)
        for feed in app.settings.feeds:
            if feed.transport == "poll":
                job = poller.Poller(app, feed, self.session)
                self._every(f"feed:{feed.name}", feed.interval_s, now, job, feed.jitter)
        self._every("escalation", app.settings.escalation_tick_s, now, app.tick)
        self._every("expiry", app.settings.escalation_tick_s, now, app.lift_lapsed)
        self._every("resume", app.settings.escalation_tick_s, now, app.resume_unfinished)
        worker = f"{socket.gethostname()}:{os.getpid()}"
        drills_due = functools.partial(app.fire_due_drills, worker)
        self._every("drills", app.settings.escalation_tick_s, now, drills_due)
        self._every("feed-watch", app.settings.feed_watch_s, now, app.report_silent_feeds)
        self.leading = True

    async def follow(self, timeout_s: float = 10.0) -> None:
        """Remove the lease holder's jobs and wait for their runs in flight."""
        self.leading = False
        for job in self.scheduler.get_jobs():
            if job.id not in EVERY_PROCESS:
                job.remove()
        await finish({t for t in self.running if t.get_name() not in EVERY_PROCESS}, timeout_s)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """No new runs; wait up to ``timeout_s`` for the current ones, then cancel them."""
        self.scheduler.shutdown(wait=False)
        await finish(set(self.running), timeout_s)

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
                task.set_name(job_id)
                self.running.add(task)
            try:
                await job()
            except (OSError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as e:
                # the store is unreachable: one line per run, not a traceback ten times a second
                _log.warning("job_failed", job=job_id, error=f"{type(e).__name__}: {e}"[:300])
            except Exception:
                _log.exception("job_failed", job=job_id)
            finally:
                if task is not None:
                    self.running.discard(task)

        return run


async def finish(runs: set[asyncio.Task[Any]], timeout_s: float) -> None:
    """Let ``runs`` end within ``timeout_s``; cancel the ones that do not, so a stop
    is bounded even when a run waits on a connection an outage left dead."""
    if not runs:
        return
    _, late = await asyncio.wait(runs, timeout=timeout_s)
    for task in late:
        _log.warning("job_cancelled", job=task.get_name(), after_s=timeout_s)
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=2.0)


async def drain(app: App) -> None:
    """Pump until the due part of the outbox is empty."""
    await app.dispatcher().drain()
