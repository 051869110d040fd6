"""Several real ``warnbot run`` processes on one database, one of them SIGKILLed.

The fake Twilio runs in the test process and keeps every message it took, so
"sent exactly once" is counted where it matters: at the provider.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from tests import daemons
from tests.daemons import CountingTwilio, Daemon
from warnbot.store import Store
from warnbot.store.tables import escalations, outbox, requests, responders

pytestmark = pytest.mark.postgres


@pytest.fixture
async def fake() -> AsyncIterator[CountingTwilio]:
    async with CountingTwilio() as f:
        yield f


@pytest.fixture
async def pg_store() -> AsyncIterator[Store]:
    """A migrated store on a PostgreSQL database of its own (dropped afterwards)."""
    url, name = await daemons.scratch_pg()
    store = Store.connect(url)
    await store.migrate()
    yield store
    await store.close()
    await daemons.drop_pg(name)


def _url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


async def _start(store: Store, fake: CountingTwilio, tmp: Path, n: int) -> list[Daemon]:
    procs = [daemons.start(_url(store), fake.base_url, tmp, f"d{i}") for i in range(n)]
    try:
        await daemons.wait_ready(procs)
    except BaseException:
        for d in procs:
            d.stop()
        raise
    return procs


async def _requests(store: Store, count: int, timeout_s: float = 30) -> list[dict[str, object]]:
    """The requests of the incident the leader opened from the demo feed, with phones."""
    query = sa.select(requests, responders.c.phones).join(
        responders, responders.c.key == requests.c.responder_key
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with store.engine.connect() as conn:
            rows = [dict(r) for r in (await conn.execute(query)).mappings()]
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.2)
    raise AssertionError(f"only {len(rows)} requests")


async def _until_accepted(fake: CountingTwilio, n: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while fake.accepted < n:
        assert time.monotonic() < deadline, f"the fake took only {fake.accepted}"
        await asyncio.sleep(0.02)


async def _answer(alive: list[Daemon], phones: list[str]) -> set[str]:
    """Each phone answers 收到 through a live daemon, retried on another when one
    does not answer (as Twilio retries); the phones whose answer got a 200."""
    done = set()
    async with aiohttp.ClientSession() as session:
        for phone in phones:
            for d in random.sample(alive, len(alive)):
                if d.alive() and await d.sms_reply(session, phone, "收到") == 200:
                    done.add(phone)
                    break
    return done


async def _settled(store: Store, timeout_s: float = 60) -> list[dict[str, object]]:
    """Until every request is confirmed or escalated and the outbox is drained."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with store.engine.connect() as conn:
            rows = [dict(r) for r in (await conn.execute(sa.select(requests))).mappings()]
        if rows and all(r["status"] in ("confirmed", "escalated") for r in rows):
            break
        await asyncio.sleep(0.3)
    await daemons.lapse_orphaned_claims(store)
    await daemons.wait_sent(store, timeout_s)
    return rows


async def _assert_exactly_once(store: Store, fake: CountingTwilio, blasted: int) -> None:
    async with store.engine.connect() as conn:
        statuses = dict(
            (
                await conn.execute(
                    sa.select(outbox.c.status, sa.func.count())
                    .where(outbox.c.channel == "twilio")
                    .group_by(outbox.c.status)
                )
            ).all()
        )
        fired = (await conn.execute(sa.select(sa.func.count()).select_from(escalations))).scalar()
    assert set(statuses) == {"sent"}, statuses
    # every message — asks, reminders, reports of silence — reached the provider once:
    # an escalation fired twice would show here as the same text to the same number
    assert fake.doubled() == []
    assert len(fake.messages) == statuses["sent"]
    assert sum(1 for n in fake.by_to if n.startswith("+86139")) == blasted
    assert fired  # the silent did climb the ladder


def _sent_by(d: Daemon) -> int:
    """How many sends a daemon's log records (every process drains the outbox)."""
    return sum('"event": "sent"' in line for line in d.log.read_text("utf-8").splitlines())


@pytest.mark.parametrize("processes", [2, 3])
async def test_processes_sharing_postgresql_send_everything_once_when_one_is_killed(
    pg_store: Store, fake: CountingTwilio, tmp_path: Path, processes: int
) -> None:
    procs = await _start(pg_store, fake, tmp_path, processes)
    try:
        (leader,) = await daemons.leaders(procs)
        victim = next(d for d in procs if d is not leader)
        asked = await _requests(pg_store, 11)
        phones = sorted({r["phones"][0] for r in asked})  # type: ignore[index]
        await daemons.blast(pg_store, 3000, datetime.now(UTC))
        answered = await _answer(procs, phones[:3])
        await _until_accepted(fake, 1000)
        victim.kill()
        survivors = [d for d in procs if d is not victim]
        answered |= await _answer(survivors, phones[3:6])
        rows = await _settled(pg_store)
        await _assert_exactly_once(pg_store, fake, 3000)
        confirmed = {r["responder_key"] for r in rows if r["status"] == "confirmed"}
        by_phone = {r["phones"][0]: r["responder_key"] for r in asked}  # type: ignore[index]
        assert {by_phone[p] for p in answered} == confirmed and len(answered) == 6
        assert all(r["status"] == "escalated" for r in rows if r["status"] != "confirmed")
        assert all(_sent_by(d) > 0 for d in survivors)  # leader or not, each one sends
    finally:
        for d in procs:
            d.stop()


async def test_killing_the_lease_holder_hands_the_scheduler_over_within_the_lease_time(
    pg_store: Store, fake: CountingTwilio, tmp_path: Path
) -> None:
    procs = await _start(pg_store, fake, tmp_path, 3)
    try:
        (leader,) = await daemons.leaders(procs)
        await _requests(pg_store, 11)  # asked; the ack window (4 s) has not passed yet
        await daemons.blast(pg_store, 3000, datetime.now(UTC))
        await _until_accepted(fake, 500)
        leader.kill()
        killed_at = time.monotonic()
        survivors = [d for d in procs if d is not leader]
        while not (new := await daemons.leaders(survivors)):
            assert time.monotonic() - killed_at < daemons.LEASE_S * 3
            await asyncio.sleep(0.1)
        took_s = time.monotonic() - killed_at
        assert len(new) == 1 and took_s <= daemons.LEASE_S + 1.5, took_s
        rows = await _settled(pg_store)
        await _assert_exactly_once(pg_store, fake, 3000)
        assert rows and all(r["status"] == "escalated" for r in rows)  # nobody answered
    finally:
        for d in procs:
            d.stop()


async def test_two_processes_on_sqlite_never_both_run_the_scheduler(
    fake: CountingTwilio, tmp_path: Path
) -> None:
    store = Store.connect(f"sqlite+aiosqlite:///{tmp_path}/w.db")
    await store.migrate()
    procs = await _start(store, fake, tmp_path, 2)
    try:
        (leader,) = await daemons.leaders(procs)
        await _requests(store, 11)  # the leader polled the feed and asked everyone
        leader.kill()
        killed_at = time.monotonic()
        (other,) = [d for d in procs if d is not leader]
        while not await daemons.leaders([other]):
            assert time.monotonic() - killed_at < daemons.LEASE_S * 3
            await asyncio.sleep(0.1)
        assert time.monotonic() - killed_at <= daemons.LEASE_S + 1.5
        rows = await _settled(store)
        await _assert_exactly_once(store, fake, 0)
        assert len(rows) == 11
    finally:
        for d in procs:
            d.stop()
        await store.close()
