"""``warnbot run``: the web server with the scheduler and the app's lifecycle
attached as an aiohttp cleanup context, so SIGTERM stops everything in order:
the scheduler first, then the web server, then channels and the store.

Every process drains the outbox; the one holding the scheduler lease
(:mod:`warnbot.lease`) also runs the pollers, MQTT subscriptions, the
escalation clock, expiry and the feed watch."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from warnbot import lease, log, schedule
from warnbot.app import App
from warnbot.ingest import mqtt
from warnbot.rules import threshold_rules
from warnbot.web import APP, make_app, ready

_log = log.get(__name__)


def web_app(app: App) -> web.Application:
    """The HTTP app that also starts and stops ``app`` and its scheduled jobs."""
    application = make_app(app)
    application[ready.STATE] = ready.SchedulerState()
    application.cleanup_ctx.append(_lifecycle)
    return application


async def _lifecycle(application: web.Application) -> AsyncIterator[None]:
    app, state = application[APP], application[ready.STATE]
    async with lease.starting(app.settings.database_url):
        await app.start()
    async with aiohttp.ClientSession() as session:
        jobs = schedule.Schedule(app, session, leader=False)
        subscriptions: list[asyncio.Task[None]] = []

        async def gain() -> None:
            # the holder before may have died between storing readings and deciding
            app.readings_unsettled = bool(threshold_rules(app.settings.rules))
            jobs.lead()
            subscriptions.extend(
                asyncio.create_task(mqtt.subscribe(app, f))
                for f in app.settings.feeds
                if f.transport == "mqtt"
            )
            state.leader = state.scheduler_running = True

        async def loss() -> None:
            state.leader = state.scheduler_running = False
            for task in subscriptions:
                task.cancel()
            await asyncio.gather(*subscriptions, return_exceptions=True)
            subscriptions.clear()
            await jobs.follow()

        settings = app.settings
        holder = lease.Holder(
            lease.for_database(settings.database_url, settings.lease_s),
            gain,
            loss,
            interval_s=settings.lease_s / 3,
        )
        jobs.start()
        await holder.step()  # the first process up leads before it says it started
        holder.start()
        state.started = True
        freeze_startup_heap()
        _log.info("started", feeds=len(settings.feeds), people=len(app.people), leader=holder.held)
        yield
        await holder.stop()
        await jobs.stop()
    await app.stop()
    _log.info("stopped")


def freeze_startup_heap() -> None:
    """Move what start-up made (modules, settings, roster: ~130,000 objects) out of the
    collector's sight. A full collection scanned it all, stalling the event loop 70–100 ms
    (measured): enough to bunch rate-limited sends so a provider saw 21 in one second of
    a 20/s limit. Frozen objects are still freed when nothing refers to them."""
    gc.collect()
    gc.freeze()


def run(app: App) -> None:
    """Serve until SIGINT/SIGTERM."""
    web.run_app(
        web_app(app),
        host=app.settings.web.host,
        port=app.settings.web.port,
        print=None,
        shutdown_timeout=10,
    )
