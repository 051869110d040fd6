"""The aiohttp application: provider webhooks, ack links, health.

Every handler reaches warnbot through the one ``APP`` key; routes are listed
here so the whole HTTP surface reads in one place.
"""

from __future__ import annotations

from aiohttp import web

from warnbot.app import App
from warnbot.web import (
    ack_links,
    aliyun_hooks,
    health,
    incidents,
    push,
    ready,
    telegram_hooks,
    transfer_list,
    twilio_hooks,
)
from warnbot.web.keys import APP

__all__ = ["APP", "make_app"]

MAX_BODY_BYTES = 2 * 1024 * 1024  # webhooks are small, pushed CAP can be larger; no more


def make_app(app: App) -> web.Application:
    """The HTTP application serving ``app``."""
    web_app = web.Application(
        client_max_size=MAX_BODY_BYTES, middlewares=[ready.scrubbed_errors, ready.store_down]
    )
    web_app[APP] = app
    from warnbot import api, console, metrics  # imported here: they import warnbot.web.keys

    console.install(web_app, app)
    web_app.add_routes([*api.routes(), web.get("/metrics", metrics.serve)])
    web_app.add_routes(
        [
            web.get("/healthz", health.healthz),
            web.get("/readyz", ready.readyz),
            web.post("/hooks/twilio/sms", twilio_hooks.inbound_sms),
            web.post("/hooks/twilio/status", twilio_hooks.status),
            web.post("/hooks/twilio/voice/{token}", twilio_hooks.keypad),
            web.post("/hooks/telegram", telegram_hooks.update),
            web.post("/hooks/aliyun/sms/{secret}", aliyun_hooks.inbound_sms),
            web.post("/hooks/aliyun/report/{secret}", aliyun_hooks.delivery_reports),
            web.post("/api/feeds/{name}", push.push_feed),
            web.get("/api/incidents/{id}/cap.xml", incidents.cap_xml),
            web.get("/a/{token}", ack_links.page),
            web.post("/a/{token}", ack_links.confirm),
            web.get("/a/{token}/list", transfer_list.page),
        ]
    )
    return web_app
