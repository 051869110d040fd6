"""The scheduler lease: one holder at a time, freed when the holder goes."""

from __future__ import annotations

import sqlalchemy as sa

from warnbot import lease
from warnbot.store import Store


async def test_only_one_holder_takes_the_lease_at_a_time(db_url: str) -> None:
    first, second = lease.for_database(db_url, 3), lease.for_database(db_url, 3)
    try:
        assert await first.acquire()
        assert not await second.acquire()
        assert await first.check() and not await second.check()
    finally:
        await first.release()
        await second.release()


async def test_the_lease_is_free_again_once_its_holder_lets_go(db_url: str) -> None:
    first, second = lease.for_database(db_url, 3), lease.for_database(db_url, 3)
    try:
        assert await first.acquire()
        await first.release()
        assert await second.acquire()
    finally:
        await second.release()


async def test_a_holder_whose_connection_dies_loses_the_lease_to_another(pg_url: str) -> None:
    first, second = lease.PgLease(pg_url, 3), lease.PgLease(pg_url, 3)
    store = Store.connect(pg_url)
    try:
        assert await first.acquire()
        async with store.engine.begin() as conn:
            killed = await conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted"
                )
            )
            assert killed.scalar()
        assert not await first.check()
        assert await second.acquire()
    finally:
        await first.release()
        await second.release()
        await store.close()


async def test_the_holder_runs_the_jobs_only_while_it_holds_the_lease(db_url: str) -> None:
    events: list[str] = []

    async def gain() -> None:
        events.append("gain")

    async def loss() -> None:
        events.append("loss")

    blocker = lease.for_database(db_url, 3)
    holder = lease.Holder(lease.for_database(db_url, 3), gain, loss, interval_s=0.05)
    try:
        assert await blocker.acquire()
        await holder.step()
        assert events == [] and not holder.held
        await blocker.release()
        await holder.step()
        await holder.step()
        assert events == ["gain"] and holder.held
    finally:
        await holder.stop()
        await blocker.release()
    assert events == ["gain", "loss"]


async def test_an_in_memory_database_always_holds_its_own_lease() -> None:
    sole = lease.for_database("sqlite+aiosqlite:///:memory:")
    assert await sole.acquire() and await sole.check()
