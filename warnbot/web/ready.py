"""Readiness (``/readyz``) and what a request gets while the store is down.

``/healthz`` is liveness: the process answers. ``/readyz`` is readiness: the
store answers and, on the process holding the scheduler lease, the scheduler
runs. A standby process (the lease is elsewhere) is ready: it serves the web
and drains the outbox. The JSON body says which part is not ready.

While the store is unreachable, a request that needs it gets 503 (and
``Retry-After``), never a 200 for work that was not recorded: Twilio and the
other providers retry a webhook that failed, so an answer is delayed, not lost.
"""

from __future__ import annotations

import asyncio
import traceback
from dataclasses import dataclass

import sqlalchemy.exc
from aiohttp import web
from aiohttp.typedefs import Handler

from warnbot import log
from warnbot.secrecy import secret_values
from warnbot.web.keys import APP

_log = log.get(__name__)
PING_TIMEOUT_S = 2.0


@dataclass
class SchedulerState:
    """What the daemon's lifecycle tells ``/readyz``: whether this process holds the
    scheduler lease and whether its scheduler is running."""

    started: bool = False
    leader: bool = False
    scheduler_running: bool = False


STATE = web.AppKey("scheduler_state", SchedulerState)


async def readyz(request: web.Request) -> web.Response:
    """200 with ``{"ready": true, …}`` when ready, 503 with the reason otherwise."""
    store_ok = await _store_answers(request)
    state = request.app.get(STATE) or SchedulerState(started=True)
    scheduler = (
        "starting"
        if not state.started
        else "standby"
        if not state.leader
        else "running"
        if state.scheduler_running
        else "stopped"
    )
    ready = store_ok and scheduler in ("running", "standby")
    body = {
        "ready": ready,
        "store": "ok" if store_ok else "unreachable",
        "lease": "held" if state.leader else "not held",
        "scheduler": scheduler,
    }
    return web.json_response(body, status=200 if ready else 503)


async def _store_answers(request: web.Request) -> bool:
    try:
        await asyncio.wait_for(request.app[APP].store.ping(), PING_TIMEOUT_S)
    except (TimeoutError, OSError, sqlalchemy.exc.SQLAlchemyError) as e:
        _log.warning("store_unreachable", error=type(e).__name__)
        return False
    return True


@web.middleware
async def store_down(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request that failed because the store is unreachable gets 503, so the
    sender retries; nothing was recorded, so nothing is half done."""
    try:
        return await handler(request)
    except (OSError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as e:
        _log.warning("store_unreachable", path=request.path, error=type(e).__name__)
    except sqlalchemy.exc.DBAPIError as e:
        if not e.connection_invalidated:
            raise
        _log.warning("store_unreachable", path=request.path, error=type(e).__name__)
    return web.json_response(
        {"error": "存储暂不可用 store unavailable, retry later"},
        status=503,
        headers={"Retry-After": "5"},
    )


@web.middleware
async def scrubbed_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A handler that crashed gets a plain 500, and its traceback is logged with
    every configured secret blanked out: an exception message may carry a token."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as e:
        app = request.app[APP]
        log.hide(secret_values(app.settings, app.link_secret))
        text = log.scrub("".join(traceback.format_exception(e)))
        _log.error("handler_failed", path=request.path, error=type(e).__name__, trace=text)
        return web.json_response({"error": "内部错误 internal error"}, status=500)
