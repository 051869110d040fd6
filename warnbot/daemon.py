"""``warnbot run``: the web server with the scheduler and the app's lifecycle
attached as an aiohttp cleanup context, so SIGTERM stops everything in order:
the scheduler first, then the web server, then channels and the store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from warnbot import log, schedule
from warnbot.app import App
from warnbot.ingest import mqtt
from warnbot.web import APP, make_app

_log = log.get(__name__)


def web_app(app: App) -> web.Application:
    """The HTTP app that also starts and stops ``app`` and its scheduled jobs."""
    application = make_app(app)
    application.cleanup_ctx.append(_lifecycle)
    return application


async def _lifecycle(application: web.Application) -> AsyncIterator[None]:
    app = application[APP]
    await app.start()
    async with aiohttp.ClientSession() as session:
        jobs = schedule.Schedule(app, session)
        jobs.start()
        subscriptions = [
            asyncio.create_task(mqtt.subscribe(app, f))
            for f in app.settings.feeds
            if f.transport == "mqtt"
        ]
        _log.info("started", feeds=len(app.settings.feeds), people=len(app.people))
        yield
        for task in subscriptions:
            task.cancel()
        await asyncio.gather(*subscriptions, return_exceptions=True)
        await jobs.stop()
    await app.stop()
    _log.info("stopped")


def run(app: App) -> None:
    """Serve until SIGINT/SIGTERM."""
    web.run_app(
        web_app(app),
        host=app.settings.web.host,
        port=app.settings.web.port,
        print=None,
        shutdown_timeout=10,
    )
