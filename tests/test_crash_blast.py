"""SIGKILL in the middle of a 50,000-message blast, then a restart: at the provider,
every message arrives, and none twice (reconciliation finds what the killed
process had sent but not yet recorded)."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import daemons
from warnbot.store import Store
from warnbot.store.tables import outbox

BLAST = 50_000


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def own_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated store on a database of its own."""
    name = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/blast.db"
    else:
        url, name = await daemons.scratch_pg()
    store = Store.connect(url)
    await store.migrate()
    yield store
    await store.close()
    if name:
        await daemons.drop_pg(name)


@pytest.fixture
def fake() -> AsyncIterator[daemons.FakeProcess]:
    f = daemons.FakeProcess()
    yield f
    f.close()


async def test_sigkill_mid_blast_then_restart_delivers_every_message_exactly_once(
    own_store: Store, fake: daemons.FakeProcess, tmp_path: Path
) -> None:
    url = own_store.engine.url.render_as_string(hide_password=False)
    await daemons.blast(own_store, BLAST, datetime.now(UTC))
    first = daemons.start(url, fake.base_url, tmp_path, "first")
    second = None
    try:
        deadline = time.monotonic() + 180
        while await fake.accepted() < BLAST // 3:
            assert first.alive() and time.monotonic() < deadline, first.log.read_text()[-2000:]
            await asyncio.sleep(0.1)
        await fake.hold()  # sends taken but unanswered: the killed process's rows in doubt
        while await fake.held() < 5:
            assert first.alive() and time.monotonic() < deadline, first.log.read_text()[-2000:]
            await asyncio.sleep(0.05)
        first.kill()
        await fake.release()
        left = await own_store.outbox_counts()
        assert left.get("queued", 0) > 0  # killed mid-blast, not after it
        assert left.get("sending", 0) > 0  # and with sends in doubt
        second = daemons.start(url, fake.base_url, tmp_path, "second")
        await daemons.lapse_orphaned_claims(own_store)
        counts = await daemons.wait_sent(own_store, 240)
        sent = await fake.sent()
    finally:
        first.stop()
        if second is not None:
            assert second.stop() == 0
    blasted = collections.Counter(p for p in sent if p[0].startswith("+86139"))
    assert len(blasted) == BLAST  # nothing lost
    assert max(blasted.values()) == 1  # nothing doubled: in-doubt rows were reconciled
    assert set(counts) == {"sent"}
    # every SMS row the store calls sent reached the fake (voice calls of the ladder
    # go to its Calls API, not its messages)
    assert await _sent_sms_rows(own_store) == len(sent)


async def test_a_large_batch_enters_the_outbox_exactly_as_a_small_one_does(store: Store) -> None:
    from warnbot.model import Message
    from warnbot.store.sql import BULK_ROWS

    now = datetime(2026, 8, 15, 6, 15, tzinfo=UTC)
    many = [
        Message(f"m:{i}", "twilio", f"+86139{i:08d}", "提示", 7, f"R{i}", ("甲", "乙"), "tok", 1)
        for i in range(BULK_ROWS)
    ]
    await store.enqueue([*many[:1], Message("one", "twilio", "+8613900000000", "提示")], now)
    await store.enqueue(many, now)  # the first is already there: left as it is
    rows = await store.claim(BULK_ROWS + 10, now, 60)
    assert len(rows) == BULK_ROWS + 1
    by_key = {r.key: r for r in rows}
    got = by_key["m:7"]
    assert (got.address, got.body, got.incident_id, got.responder_key) == (
        "+8613900000007",
        "提示",
        7,
        "R7",
    )
    assert got.mentions == ["甲", "乙"] and got.ack_token == "tok" and got.created_at == now
    assert by_key["one"].mentions is None


async def test_a_large_batch_is_part_of_the_callers_transaction(store: Store) -> None:
    from warnbot.model import Message
    from warnbot.store.sql import BULK_ROWS, enqueue

    now = datetime(2026, 8, 15, 6, 15, tzinfo=UTC)
    many = [Message(f"t:{i}", "twilio", f"+86139{i:08d}", "提示") for i in range(BULK_ROWS)]
    with pytest.raises(RuntimeError):
        async with store.engine.begin() as conn:
            await enqueue(conn, many, now)
            raise RuntimeError("the deciding transaction fails")
    assert await store.outbox_counts() == {}


async def _sent_sms_rows(store: Store) -> int:
    query = sa.select(sa.func.count()).where(
        outbox.c.status == "sent", outbox.c.channel == "twilio"
    )
    async with store.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())
