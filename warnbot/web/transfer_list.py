"""A person's transfer list (转移清单) behind their signed ack link: ``/a/<token>/list``.

A message with a list too long for SMS carries this link instead. The token
already names one request of one person; the page shows only that person's
list for that incident, with each entry moved or not. GET changes nothing.
"""

from __future__ import annotations

from aiohttp import web

from warnbot import links
from warnbot.transfers import progress
from warnbot.web.keys import APP


async def page(request: web.Request) -> web.Response:
    app = request.app[APP]
    request_id = links.verify(request.match_info["token"], app.link_secret)
    req = await app.store.request(request_id) if request_id is not None else None
    incident = await app.store.incident(req.incident_id) if req else None
    person = app.people.get(req.responder_key) if req else None
    if req is None or incident is None or person is None:
        raise web.HTTPNotFound(text="链接无效 / invalid link")
    store = app.store
    entries = await store.transfer_list([person.key])
    board = progress(entries, await store.transfer_marks(incident.id), {person.key})
    html = app.renderer.render(
        "web",
        "transfers.html",
        person.language,
        incident=incident,
        person=person,
        states=board[0].states if board else (),
        moved=board[0].moved if board else 0,
    )
    return web.Response(text=html, content_type="text/html")
