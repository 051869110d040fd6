"""A whole daemon under store and feed faults: it stays up, says what is wrong,
loses nothing, and resumes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web

from tests import daemons
from tests.conftest import DEMO
from tests.daemons import CountingTwilio
from tests.test_feeds_live import RULE
from warnbot.model import Observation
from warnbot.store import Store
from warnbot.store.tables import requests, responders

OUTAGE_S = 30.0
DUTY_OFFICER = "+8617000000900"  # D01 in config/demo/roster.csv


class Proxy:
    """A TCP proxy on 127.0.0.1 to the PostgreSQL server that a test can cut
    (refusing new connections and dropping live ones) and restore, on one port."""

    def __init__(self, target_port: int = 5432) -> None:
        self.target_port, self.port = target_port, daemons.free_port()
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for task in list(self.pipes):
            task.cancel()
        await asyncio.gather(*self.pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.pipes.add(task)
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
            await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            if "up_w" in locals():
                up_w.close()
            self.pipes.discard(task)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    finally:
        dst.close()


@pytest.fixture
async def fake() -> AsyncIterator[CountingTwilio]:
    async with CountingTwilio() as f:
        yield f


@pytest.fixture
async def pg() -> AsyncIterator[tuple[Store, str]]:
    url, name = await daemons.scratch_pg()
    store = Store.connect(url)
    await store.migrate()
    yield store, name
    await store.close()
    await daemons.drop_pg(name)


async def _get(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as r:
        return r.status


async def _until(check: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)


@pytest.mark.postgres
async def test_a_daemon_cut_off_from_postgresql_stays_alive_refuses_acks_and_resumes(
    pg: tuple[Store, str], fake: CountingTwilio, tmp_path: Path
) -> None:
    store, name = pg
    proxy = Proxy()
    await proxy.open()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/{name}"
    d = daemons.start(url, fake.base_url, tmp_path, "cut")
    try:
        await daemons.wait_ready([d])
        async with aiohttp.ClientSession() as session:
            await _until(lambda: _asked(store), 30)
            phone = await _a_phone(store)
            await proxy.cut()
            cut_at = time.monotonic()

            async def not_ready() -> bool:
                status, body = await d.readyz(session)
                return status == 503 and body["store"] == "unreachable"

            await _until(not_ready, 15)
            assert await _get(session, f"{d.base}/healthz") == 200
            assert await d.sms_reply(session, phone, "收到") == 503  # Twilio will retry
            await daemons.blast(store, 200, datetime.now(UTC))  # work arriving meanwhile
            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - cut_at)))
            assert d.alive() and (await d.readyz(session))[0] == 503
            await proxy.open()

            async def ready_again() -> bool:
                status, body = await d.readyz(session)
                return status == 200 and body["scheduler"] == "running"

            await _until(ready_again, 30)
            assert await d.sms_reply(session, phone, "收到") == 200  # the retry lands
        await daemons.wait_sent(store, 60)
        assert fake.doubled() == [] and sum(n.startswith("+86139") for n in fake.by_to) == 200
        assert "confirmed" in await _statuses(store)
    finally:
        code = d.stop()
        await proxy.cut()
    assert code == 0, d.log.read_text("utf-8")[-3000:]  # SIGTERM stops it within 30 s


async def _asked(store: Store) -> bool:
    async with store.engine.connect() as conn:
        return bool((await conn.execute(sa.select(sa.func.count()).select_from(requests))).scalar())


async def _a_phone(store: Store) -> str:
    query = sa.select(responders.c.phones).join(
        requests, requests.c.responder_key == responders.c.key
    )
    async with store.engine.connect() as conn:
        return str((await conn.execute(query)).scalars().first()[0])


async def _statuses(store: Store) -> list[str]:
    async with store.engine.connect() as conn:
        return list((await conn.execute(sa.select(requests.c.status))).scalars())


async def _bad_feeds(server: web.Application) -> None:
    async def hang(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(3600)
        return web.Response()

    async def garbage(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"<alert><<<\x00\xff not CAP", content_type="application/xml")

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/xml"})
        await response.prepare(request)
        chunk = b"<a>" + b"x" * (1024 * 1024 - 3)
        for _ in range(50):  # 50 MB
            await response.write(chunk)
        await response.write_eof()
        return response

    server.router.add_get("/hang", hang)
    server.router.add_get("/garbage", garbage)
    server.router.add_get("/huge", huge)


async def test_a_hanging_a_garbage_and_a_50_mb_feed_are_marked_unhealthy_and_reported(
    fake: CountingTwilio, tmp_path: Path, aiohttp_server: object
) -> None:
    feeds_app = web.Application()
    await _bad_feeds(feeds_app)
    server = await aiohttp_server(feeds_app)  # type: ignore[operator]
    base = f"http://127.0.0.1:{server.port}"
    bad = {"hang": f"{base}/hang", "garbage": f"{base}/garbage", "huge": f"{base}/huge"}
    feeds = [
        {"name": "demo", "url": f"file:{DEMO / 'feed' / 'rainstorm_orange.xml'}", "interval_s": 2}
    ] + [
        {
            "name": n,
            "url": u,
            "format": "cap",
            "interval_s": 1,
            "timeout_s": 2,
            "silent_after_s": 3,
        }
        for n, u in bad.items()
    ]
    db = tmp_path / "feeds.db"
    url = f"sqlite+aiosqlite:///{db}"
    d = daemons.start(
        url,
        fake.base_url,
        tmp_path,
        "feeds",
        WARNBOT_FEEDS=json.dumps(feeds),
        WARNBOT_FEED_WATCH_S="1",
    )
    store = Store.connect(url)
    try:
        await daemons.wait_ready([d])

        async def all_reported() -> bool:
            told = [m.body or "" for m in fake.by_to.get(DUTY_OFFICER, [])]
            return all(any(n in b for b in told) for n in bad)

        await _until(all_reported, 60)
        health = {h["name"]: h for h in await store.feed_health()}
        assert health["demo"]["failures"] == 0
        assert "TimeoutError" in health["hang"]["last_error"]
        assert "larger than" in health["huge"]["last_error"]
        assert health["garbage"]["failures"] >= 1 and health["garbage"]["last_error"]
        assert len(await store.open_incidents()) == 1  # the good feed still works
        async with aiohttp.ClientSession() as session:
            assert (await d.readyz(session))[0] == 200
    finally:
        assert d.stop() == 0, d.log.read_text("utf-8")[-3000:]
        await store.close()


async def test_a_new_lease_holder_decides_on_readings_the_last_one_stored_and_died_with(
    fake: CountingTwilio, tmp_path: Path
) -> None:
    """The holder before stored a crossing reading and died before deciding; the station
    then fell silent. The next daemon up decides on what is stored."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'readings.db'}"
    store = Store.connect(url)
    await store.migrate()
    taken = datetime.now(UTC) - timedelta(minutes=1)
    await store.record_observations(
        [Observation("st-1", "water_level", 5.4, "m", taken, region_code="449901001")]
    )
    d = daemons.start(
        url,
        fake.base_url,
        tmp_path,
        "readings",
        WARNBOT_FEEDS="[]",
        WARNBOT_RULES=json.dumps([RULE.model_dump(mode="json", exclude_defaults=True)]),
    )
    try:
        await daemons.wait_ready([d])

        async def opened() -> bool:
            return bool(await store.open_incidents())

        await _until(opened, 30)
        ((incident, _),) = await store.open_incidents()
        assert (incident.hazard, incident.level.roman) == ("洪水", "Ⅲ")
    finally:
        assert d.stop() == 0, d.log.read_text("utf-8")[-3000:]
        await store.close()
