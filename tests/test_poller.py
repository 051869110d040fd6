"""Feed polling: good feeds open incidents; a bad feed is marked unhealthy, others go on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import DATA, DEMO
from warnbot import schedule
from warnbot.app import App
from warnbot.errors import FeedError
from warnbot.ingest import poller
from warnbot.settings import FeedSettings

GOOD = DEMO / "feed" / "rainstorm_orange.xml"
MALFORMED = DATA / "samples" / "bad" / "not_well_formed.atom.xml"


def _feed(url: str, **kw: Any) -> FeedSettings:
    return FeedSettings(name=kw.pop("name", "test"), url=url, **kw)


async def test_a_good_file_feed_opens_an_incident_once(app: App) -> None:
    async with aiohttp.ClientSession() as session:
        first = await poller.poll(app, _feed(f"file:{GOOD}"), session)
        again = await poller.poll(app, _feed(f"file:{GOOD}"), session)
    assert [t.kind for t in first] == ["open"] and again == []
    (health,) = await app.store.feed_health()
    assert health["failures"] == 0 and health["last_success"] is not None


@pytest.mark.parametrize(
    "path",
    [
        MALFORMED,
        DATA / "samples" / "bad" / "xxe_external_entity.cap.xml",
        Path("/nonexistent/feed.xml"),
    ],
)
async def test_a_bad_feed_is_marked_unhealthy_with_its_reason(app: App, path: Path) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FeedError):
            await poller.poll(app, _feed(f"file:{path}"), session)
    (health,) = await app.store.feed_health()
    assert health["failures"] == 1 and health["last_error"]
    assert await app.store.open_incidents() == []


async def test_an_oversized_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    big.write_bytes(b"<alert>" + b" " * 2048 + b"</alert>")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FeedError, match="larger than 1024"):
            await poller.fetch(_feed(f"file:{big}", max_bytes=1024), session)


async def _serve(aiohttp_server: Any, handler: Any) -> str:
    web_app = web.Application()
    web_app.router.add_get("/feed", handler)
    server = await aiohttp_server(web_app)
    return str(server.make_url("/feed"))


def _answer(make: Any) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return make()  # type: ignore[no-any-return]

    return handler


async def test_an_http_feed_is_fetched(aiohttp_server: Any) -> None:
    url = await _serve(aiohttp_server, _answer(lambda: web.Response(body=GOOD.read_bytes())))
    async with aiohttp.ClientSession() as session:
        assert (await poller.fetch(_feed(url), session)).data == GOOD.read_bytes()


@pytest.mark.parametrize(
    "response,reason",
    [
        (lambda: web.Response(status=503), "HTTP 503"),
        (lambda: web.Response(body=b"x" * 200_000), "larger than"),
    ],
    ids=["http-503", "oversized"],
)
async def test_an_http_feed_error_is_a_feed_error(
    aiohttp_server: Any, response: Any, reason: str
) -> None:
    url = await _serve(aiohttp_server, _answer(response))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FeedError, match=reason):
            await poller.fetch(_feed(url, max_bytes=100_000), session)


async def test_a_hanging_http_feed_times_out(aiohttp_server: Any) -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response()

    url = await _serve(aiohttp_server, hang)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FeedError, match="TimeoutError"):
            await poller.fetch(_feed(url, timeout_s=0.2), session)


async def test_the_scheduler_keeps_polling_good_feeds_beside_a_malformed_one(app: App) -> None:
    feeds = [
        _feed(f"file:{MALFORMED}", name="broken", interval_s=0.05),
        _feed(f"file:{GOOD}", name="good", interval_s=0.05),
    ]
    app.settings = app.settings.model_copy(update={"feeds": feeds})
    async with aiohttp.ClientSession() as session:
        jobs = schedule.Schedule(app, session)
        jobs.start()
        try:
            await asyncio.sleep(0.6)
        finally:
            await jobs.stop()
    health = {h["name"]: h for h in await app.store.feed_health()}
    assert health["broken"]["failures"] >= 2 and "not well-formed" in health["broken"]["last_error"]
    assert health["good"]["failures"] == 0
    assert len(await app.store.open_incidents()) == 1


async def test_a_conditional_get_sends_the_validators_and_takes_a_304_as_success(
    app: App, aiohttp_server: Any
) -> None:
    seen: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304)
        return web.Response(
            body=GOOD.read_bytes(),
            content_type="application/cap+xml",
            headers={"ETag": '"v1"', "Last-Modified": "Sat, 15 Aug 2026 06:15:00 GMT"},
        )

    feed = _feed(await _serve(aiohttp_server, handler))
    async with aiohttp.ClientSession() as session:
        first = await poller.poll(app, feed, session)
        second = await poller.poll(app, feed, session)
    assert [t.kind for t in first] == ["open"] and second == []
    assert seen[1]["If-None-Match"] == '"v1"'
    assert seen[1]["If-Modified-Since"] == "Sat, 15 Aug 2026 06:15:00 GMT"
    state = await app.store.feed_state("test")
    assert state is not None and state["failures"] == 0


async def test_an_html_error_page_served_with_200_is_refused(aiohttp_server: Any, app: App) -> None:
    url = await _serve(
        aiohttp_server,
        _answer(lambda: web.Response(text="<html>maintenance</html>", content_type="text/html")),
    )
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FeedError, match="unexpected content type 'text/html'"):
            await poller.poll(app, _feed(url, format="cap"), session)


async def test_a_failing_feed_is_polled_again_only_after_a_growing_backoff(app: App) -> None:
    async with aiohttp.ClientSession() as session:
        job = poller.Poller(
            app, _feed(f"file:{MALFORMED}", interval_s=10, max_backoff_s=60), session
        )
        await job()
        assert (job.failures, job.backoff_s()) == (1, 20)
        await job()  # not due yet: skipped, no new failure
        assert job.failures == 1
        job.next_due = 0
        await job()
        assert (job.failures, job.backoff_s()) == (2, 40)
        job.failures = 5
        assert job.backoff_s() == 60  # capped


def _atom(base: str, *entries: tuple[str, str]) -> bytes:
    items = "".join(
        f"<entry><id>{eid}</id><title>{eid}</title><updated>2026-08-15T06:15:00+08:00</updated>"
        f'<link rel="alternate" type="application/cap+xml" href="{base}/{doc}"/></entry>'
        for eid, doc in entries
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>urn:test</id><title>t</title><updated>2026-08-15T06:15:00+08:00</updated>"
        f"{items}</feed>"
    ).encode()


async def test_an_atom_index_fetches_each_new_document_once(app: App, aiohttp_server: Any) -> None:
    fetches: list[str] = []
    entries = [("e1", "a.xml"), ("e2", "a.xml")]  # two entries, one document (as MeteoAlarm)

    async def index(request: web.Request) -> web.Response:
        base = str(request.url.origin())
        return web.Response(body=_atom(base, *entries), content_type="application/atom+xml")

    async def document(request: web.Request) -> web.Response:
        fetches.append(request.match_info["doc"])
        return web.Response(body=GOOD.read_bytes(), content_type="application/cap+xml")

    web_app = web.Application()
    web_app.router.add_get("/index", index)
    web_app.router.add_get("/{doc}", document)
    server = await aiohttp_server(web_app)
    feed = _feed(str(server.make_url("/index")))
    async with aiohttp.ClientSession() as session:
        first = await poller.poll(app, feed, session)
        entries.append(("e3", "b.xml"))
        await poller.poll(app, feed, session)
    assert [t.kind for t in first] == ["open"]
    assert fetches == ["a.xml", "b.xml"]  # e1 and e2 share a.xml; the second poll takes only e3
    assert await app.store.unseen_entries("test", ["e1", "e2", "e3"]) == []
