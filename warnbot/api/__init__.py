"""The JSON API under ``/api/``: bearer tokens (stored hashed) for the console's actions.

Described by the OpenAPI document at ``/api/openapi.json`` (``openapi.py``).
"""

from __future__ import annotations

from aiohttp import web

from warnbot.api import handlers, openapi


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/api/openapi.json", openapi.document),
        web.get("/api/incidents", handlers.list_incidents),
        web.post("/api/incidents", handlers.trigger),
        web.post("/api/incidents/{id}/lift", handlers.lift),
        web.get("/api/incidents/{id}/board", handlers.ack_board),
        web.post("/api/incidents/{id}/acks", handlers.record_ack),
    ]
