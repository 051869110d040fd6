"""Poller: fetch a feed (``file:`` path or HTTP), parse it, hand the warning on.

Fetching is the only I/O here; parsing is ``ingest.cap.parse``. A failure of
any kind marks that feed unhealthy in the store and the daemon goes on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from warnbot import log
from warnbot.app import App
from warnbot.errors import FeedError
from warnbot.evaluate import Transition
from warnbot.ingest import cap
from warnbot.settings import FeedSettings

_log = log.get(__name__)


async def fetch(feed: FeedSettings, session: aiohttp.ClientSession) -> bytes:
    """The feed's bytes, at most ``max_bytes`` of them; FeedError on any failure."""
    if feed.url.startswith("file:"):
        return await asyncio.to_thread(_read_file, Path(feed.url[5:]), feed.max_bytes)
    try:
        timeout = aiohttp.ClientTimeout(total=feed.timeout_s)
        async with session.get(feed.url, timeout=timeout) as resp:
            if resp.status != 200:
                raise FeedError(f"HTTP {resp.status} from {feed.url}")
            return await _capped(resp.content, feed.max_bytes)
    except (aiohttp.ClientError, TimeoutError) as e:
        raise FeedError(f"cannot fetch {feed.url}: {type(e).__name__} {e}") from e


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise FeedError(f"cannot read {path}: {e.strerror}") from e
    if len(data) > max_bytes:
        raise FeedError(f"{path} is larger than {max_bytes} bytes")
    return data


async def _capped(stream: aiohttp.StreamReader, max_bytes: int) -> bytes:
    data = bytearray()
    async for chunk in stream.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > max_bytes:
            raise FeedError(f"response larger than {max_bytes} bytes")
    return bytes(data)


async def poll(app: App, feed: FeedSettings, session: aiohttp.ClientSession) -> list[Transition]:
    """One poll of one feed; returns the incident transitions it caused."""
    try:
        warning = cap.parse(await fetch(feed, session), language=app.settings.language)
    except FeedError as e:
        _log.warning("feed_failed", feed=feed.name, error=str(e))
        await app.store.feed_failed(feed.name, str(e), app.clock())
        return []
    await app.store.feed_ok(feed.name, app.clock())
    return await app.ingest(feed.name, warning)
