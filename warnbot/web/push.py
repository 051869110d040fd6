"""``POST /api/feeds/{name}``: upstream systems that push CAP documents or readings.

The feed must be configured with ``push_token_sha256``; the request carries the
token as ``Authorization: Bearer …``. Only the token's hash is configured, and
it is compared in constant time. A payload that does not parse is refused with
400 and recorded in the feed's health; nothing else changes.
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from warnbot.errors import FeedError
from warnbot.ingest import poller, sniff
from warnbot.settings import FeedSettings
from warnbot.web.keys import APP


async def push_feed(request: web.Request) -> web.Response:
    app = request.app[APP]
    feed = _feed(request)
    data = await request.read()
    try:
        fmt = feed.format or sniff(data)
        if fmt == "atom":
            raise FeedError("an index cannot be pushed; push the CAP documents")
        items = poller.read(feed, fmt, data, app.settings.language)
    except FeedError as e:
        await app.store.feed_failed(feed.name, f"push: {e}", app.clock())
        return web.json_response({"error": str(e)}, status=400)
    transitions = await poller.take(app, feed.name, items)
    await app.store.feed_ok(feed.name, app.clock())
    return web.json_response(
        {"accepted": len(items), "transitions": [f"{t.kind} {t.key}" for t in transitions]}
    )


def _feed(request: web.Request) -> FeedSettings:
    """The named push feed, if the bearer token opens it; 404/401/403 otherwise."""
    name = request.match_info["name"]
    feeds = request.app[APP].settings.feeds
    feed = next((f for f in feeds if f.name == name and f.push_token_sha256), None)
    if feed is None or feed.push_token_sha256 is None:
        raise web.HTTPNotFound(text="no such push feed")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "Bearer"})
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    if not hmac.compare_digest(digest, feed.push_token_sha256):
        raise web.HTTPForbidden(text="invalid token")
    return feed
