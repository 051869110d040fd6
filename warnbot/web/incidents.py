"""Incident documents: ``GET /api/incidents/{id}/cap.xml``, the latest CAP published.

Served without a token: it is the public warning, as a 12379-style feed is.
"""

from __future__ import annotations

from aiohttp import web

from warnbot.web.keys import APP


async def cap_xml(request: web.Request) -> web.Response:
    try:
        incident_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    latest = await request.app[APP].store.latest_cap(incident_id)
    if latest is None:
        raise web.HTTPNotFound(text="该响应未发布CAP / no CAP published for this incident")
    return web.Response(body=latest[1], content_type="application/cap+xml", charset="utf-8")
