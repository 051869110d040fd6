"""Signed ack links: a phone-sized page with one button that confirms one request."""

from __future__ import annotations

from aiohttp import web

from warnbot import links
from warnbot.model import Request
from warnbot.web.keys import APP


async def page(request: web.Request) -> web.Response:
    """Show what is being confirmed; GET never confirms (link previewers fetch URLs)."""
    req = await _request(request)
    return await _render(request, req, confirmed=req.status == "confirmed", late=False)


async def confirm(request: web.Request) -> web.Response:
    req = await _request(request)
    outcome = await request.app[APP].link_ack(req.id)
    late = bool(outcome.result and outcome.result.late)
    return await _render(request, req, confirmed=outcome.result is not None, late=late)


async def _request(request: web.Request) -> Request:
    app = request.app[APP]
    request_id = links.verify(request.match_info["token"], app.link_secret)
    found = await app.store.request(request_id) if request_id is not None else None
    if found is None:
        raise web.HTTPNotFound(text="链接无效 / invalid link")
    return found


async def _render(
    request: web.Request, req: Request, *, confirmed: bool, late: bool
) -> web.Response:
    app = request.app[APP]
    incident = await app.store.incident(req.incident_id)
    person = app.people.get(req.responder_key)
    if incident is None or person is None:
        raise web.HTTPNotFound(text="链接无效 / invalid link")
    html = app.renderer.render(
        "web",
        "ack.html",
        "zh",
        incident=incident,
        person=person,
        confirmed=confirmed,
        late=late,
        closed=incident.status != "open",
        deadline=req.deadline.astimezone().strftime("%H:%M"),
    )
    return web.Response(text=html, content_type="text/html")
