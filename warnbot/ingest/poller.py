"""Poller: fetch a feed (``file:`` path or HTTP), parse it, hand what it says on.

Fetching is the only I/O here; parsing is the pure ``parse`` of each format.
HTTP polls are conditional (ETag / Last-Modified, kept in the store across
restarts), capped in size, checked for content type, and time-limited. A feed
that fails is marked unhealthy with its reason and polled again after an
exponential backoff; the daemon and every other feed go on.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from warnbot import log
from warnbot.app import App
from warnbot.errors import FeedError, ParseError
from warnbot.evaluate import Transition
from warnbot.ingest import atom, cap, ea, generic, geojson, sniff, usgs
from warnbot.model import Observation
from warnbot.model import Warning as CapWarning
from warnbot.settings import FeedSettings

_log = log.get(__name__)
_CONTENT_TYPES = {
    "cap": ("xml", "cap"),
    "atom": ("xml", "atom", "rss"),
    "geojson": ("json",),
    "usgs": ("json",),
    "ea": ("json",),
    "json": ("json",),
}


@dataclass(frozen=True)
class Fetched:
    """A fetch's result; ``data`` is None when the server said 304 Not Modified."""

    data: bytes | None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str = ""


async def fetch(
    feed: FeedSettings, session: aiohttp.ClientSession, validators: dict[str, Any] | None = None
) -> Fetched:
    """The feed's bytes, at most ``max_bytes`` of them; FeedError on any failure."""
    if feed.url.startswith("file:"):
        return Fetched(await asyncio.to_thread(_read_file, Path(feed.url[5:]), feed.max_bytes))
    try:
        return await _get(feed.url, feed, session, validators or {})
    except (aiohttp.ClientError, TimeoutError) as e:
        raise FeedError(f"cannot fetch {feed.url}: {type(e).__name__} {e}") from e


async def _get(
    url: str, feed: FeedSettings, session: aiohttp.ClientSession, validators: dict[str, Any]
) -> Fetched:
    headers = {**feed.headers, **_conditional(validators)}
    timeout = aiohttp.ClientTimeout(total=feed.timeout_s)
    async with session.get(url, headers=headers, timeout=timeout) as resp:
        if resp.status == 304:
            return Fetched(None, validators.get("etag"), validators.get("last_modified"))
        if resp.status != 200:
            raise FeedError(f"HTTP {resp.status} from {url}")
        data = await _capped(resp.content, feed.max_bytes)
        return Fetched(
            data, resp.headers.get("ETag"), resp.headers.get("Last-Modified"), resp.content_type
        )


def _conditional(validators: dict[str, Any]) -> dict[str, str]:
    headers = {}
    if validators.get("etag"):
        headers["If-None-Match"] = validators["etag"]
    if validators.get("last_modified"):
        headers["If-Modified-Since"] = validators["last_modified"]
    return headers


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


def format_of(feed: FeedSettings, fetched: Fetched) -> str:
    """The configured format, or the sniffed one; FeedError when the server's
    content type contradicts it (an HTML error page served with 200)."""
    assert fetched.data is not None
    fmt = feed.format or sniff(fetched.data)
    ctype = fetched.content_type.lower()
    plain = ctype in ("", "application/octet-stream", "text/plain")
    if not plain and not any(word in ctype for word in _CONTENT_TYPES[fmt]):
        raise FeedError(f"unexpected content type {ctype!r} for a {fmt} feed")
    return fmt


def read(feed: FeedSettings, fmt: str, data: bytes, language: str) -> list[Any]:
    """Warnings, Observations or index entries from one payload (pure)."""
    if fmt == "cap":
        return [cap.parse(data, language=language)]
    if fmt == "json":
        if feed.mapping is None:
            raise ParseError(f"feed {feed.name!r} has format json but no mapping")
        return list(generic.parse(data, generic.JsonMapping(**feed.mapping)))
    parsers: dict[str, Any] = {
        "atom": atom.parse,
        "geojson": geojson.parse,
        "usgs": usgs.parse,
        "ea": ea.parse,
    }
    return list(parsers[fmt](data))


async def poll(app: App, feed: FeedSettings, session: aiohttp.ClientSession) -> list[Transition]:
    """One poll of one feed; returns the incident transitions it caused."""
    try:
        state = await app.store.feed_state(feed.name) or {}
        fetched = await fetch(feed, session, state)
        transitions = [] if fetched.data is None else await _take(app, feed, fetched, session)
    except FeedError as e:
        _log.warning("feed_failed", feed=feed.name, error=str(e))
        await app.store.feed_failed(feed.name, str(e), app.clock())
        raise
    await app.store.feed_ok(feed.name, app.clock(), fetched.etag, fetched.last_modified)
    return transitions


async def _take(
    app: App, feed: FeedSettings, fetched: Fetched, session: aiohttp.ClientSession
) -> list[Transition]:
    assert fetched.data is not None
    fmt = format_of(feed, fetched)
    items = read(feed, fmt, fetched.data, app.settings.language)
    if fmt == "atom":
        return await _take_index(app, feed, items, session)
    return await take(app, feed.name, items)


async def take(app: App, feed: str, items: list[Any]) -> list[Transition]:
    """Hand parsed warnings and readings to the app (also used by push and MQTT)."""
    transitions: list[Transition] = []
    for w in (i for i in items if isinstance(i, CapWarning)):
        transitions += await app.ingest(feed, w)
    readings = [i for i in items if isinstance(i, Observation)]
    if readings:
        transitions += await app.ingest_observations(feed, readings)
    return transitions


async def _take_index(
    app: App, feed: FeedSettings, entries: list[atom.Entry], session: aiohttp.ClientSession
) -> list[Transition]:
    """Take only the entries of an Atom/RSS index not seen before; an entry whose
    CAP document cannot be had stays unseen and is tried at the next poll."""
    by_id = {e.id: e for e in entries}
    documents: dict[str, CapWarning] = {}  # indexes list one document under many entries
    transitions: list[Transition] = []
    for entry_id in await app.store.unseen_entries(feed.name, list(by_id)):
        warning = await _entry_warning(app, feed, by_id[entry_id], session, documents)
        transitions += await app.ingest(feed.name, warning)
        await app.store.mark_entry_seen(feed.name, entry_id, app.clock())
    return transitions


async def _entry_warning(
    app: App,
    feed: FeedSettings,
    entry: atom.Entry,
    session: aiohttp.ClientSession,
    documents: dict[str, CapWarning],
) -> CapWarning:
    inline = entry.warning()
    if inline is not None:
        return inline
    if not entry.link:
        raise ParseError(f"index entry {entry.id!r} has neither inline CAP nor a link")
    if entry.link not in documents:
        fetched = await _get(entry.link, feed, session, {})
        assert fetched.data is not None
        documents[entry.link] = cap.parse(fetched.data, language=app.settings.language)
    return documents[entry.link]


class Poller:
    """A feed's scheduled job: polls, and backs off exponentially while it fails."""

    def __init__(self, app: App, feed: FeedSettings, session: aiohttp.ClientSession) -> None:
        self.app, self.feed, self.session = app, feed, session
        self.failures = 0
        self.next_due = 0.0  # time.monotonic() before which the job skips its turn

    def backoff_s(self) -> float:
        return min(self.feed.interval_s * 2.0**self.failures, self.feed.max_backoff_s)

    async def __call__(self) -> None:
        if time.monotonic() < self.next_due:
            return
        try:
            await poll(self.app, self.feed, self.session)
        except FeedError:
            self.failures += 1
            self.next_due = time.monotonic() + self.backoff_s() - self.feed.interval_s
            return
        self.failures, self.next_due = 0, 0.0
