"""The duty-officer console: server-rendered pages at ``/``, Chinese first.

``install(web_app, app)`` adds its routes, its store, its templates and the
live-board hub to the aiohttp application; ``warnbot.web.make_app`` calls it.
The web parts are imported there, not here, so the command line can use
``warnbot.console.accounts_cli`` without loading the whole application.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from warnbot.app import App


def install(web_app: web.Application, app: App) -> None:
    from warnbot.console.boards import Boards
    from warnbot.console.incidents import board_renderer
    from warnbot.console.keys import BOARDS, CONSOLE_STORE, HUB, PAGES, ROSTER_CHECK
    from warnbot.console.live import Hub
    from warnbot.console.rostercheck import RosterCheck
    from warnbot.console.views import Pages
    from warnbot.store.accounts import ConsoleStore

    web_app[CONSOLE_STORE] = ConsoleStore(app.store.engine)
    web_app[PAGES] = Pages(app.settings.console.timezone)
    web_app[ROSTER_CHECK] = RosterCheck()
    hub = Hub()
    web_app[HUB] = hub
    web_app[BOARDS] = Boards(hub, board_renderer(web_app), app.settings.console.board_poll_s)
    app.observers.append(hub.observe)
    web_app.cleanup_ctx.append(_close_hub)
    web_app.on_shutdown.append(_shutdown)
    web_app.add_routes(routes())


async def _close_hub(web_app: web.Application) -> AsyncIterator[None]:
    from warnbot.console.keys import BOARDS, HUB

    yield
    web_app[HUB].close()
    await web_app[BOARDS].close()


async def _shutdown(web_app: web.Application) -> None:
    """Release the board streams before the server waits for open requests to end."""
    from warnbot.console.keys import HUB

    web_app[HUB].close()


def routes() -> list[web.AbstractRouteDef]:
    from warnbot.console import exports, incidents, pages, respond, session
    from warnbot.resources import bundled

    return [
        web.get("/", incidents.index),
        web.get("/login", session.login_page),
        web.post("/login", session.login),
        web.post("/logout", session.logout),
        web.get("/lang/{lang}", session.switch_language),
        web.get("/incidents/{id}", incidents.detail),
        web.get("/exports/incidents.csv", exports.export_all_csv),
        web.get("/incidents/{id}/events", incidents.events),
        web.get("/incidents/{id}/export.csv", exports.export_csv),
        web.get("/incidents/{id}/report.{format}", exports.incident_report),
        web.post("/incidents/{id}/lift", respond.lift),
        web.post("/incidents/{id}/upgrade", respond.upgrade),
        web.post("/incidents/{id}/remind", respond.remind),
        web.post("/incidents/{id}/phone-ack", respond.phone_ack),
        web.get("/respond", respond.form),
        web.post("/respond/preview", respond.preview),
        web.post("/respond/confirm", respond.confirm),
        web.get("/feeds", pages.feeds),
        web.get("/rosters", pages.rosters),
        web.get("/duty", pages.duty),
        web.get("/audit", pages.audit),
        web.static("/static", bundled("templates") / "console" / "static"),
    ]
