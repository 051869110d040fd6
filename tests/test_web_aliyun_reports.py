"""Aliyun delivery receipts (SmsReport): pushed by the fake Aliyun after a real send through
the official SDK, applied by BizId, an undelivered ask failing over like Twilio's 30006."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from tests.conftest import DEMO, Clock
from tests.test_channels_aliyun import FEED, KEY_ID, KEY_SECRET, SIGN, TEMPLATE
from warnbot.app import App, build
from warnbot.fakes.aliyun import FakeAliyunSms
from warnbot.ingest import cap
from warnbot.settings import load_settings
from warnbot.store import Store
from warnbot.web import make_app

PATH_SECRET = "smsreport-path-secret-0123456789abcdef012345"
FIRST, SECOND = "+8617000000401", "+8617000001401"  # V01's two numbers (invented)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAliyunSms]:
    async with FakeAliyunSms(
        KEY_ID, KEY_SECRET, sign_names=(SIGN,), templates={TEMPLATE: "${content}"}
    ) as f:
        yield f


def _aliyun(fake: FakeAliyunSms, **push: Any) -> dict[str, Any]:
    return {
        "access_key_id": KEY_ID,
        "access_key_secret": KEY_SECRET,
        "endpoint": fake.endpoint,
        "protocol": "http",
        "sign_name": SIGN,
        "template_code": TEMPLATE,
        "inbound_secret": PATH_SECRET,
    } | push


@pytest.fixture
async def app(store: Store, fake: FakeAliyunSms, clock: Clock) -> AsyncIterator[App]:
    """The demo, sending its SMS through the fake Aliyun; V01 has a second number."""
    settings = load_settings(DEMO / "warnbot.toml").model_copy(
        update={"sms_channel": "aliyun", "channels": {"aliyun": _aliyun(fake)}}
    )
    started = build(settings, store=store)
    started.clock = clock
    await started.start()
    v01 = started.people["V01"]
    started.people["V01"] = dataclasses.replace(v01, phones=(FIRST, SECOND))
    yield started
    await started.stop()


@pytest.fixture
async def client(app: App, aiohttp_client: Any) -> TestClient:
    return await aiohttp_client(make_app(app))


def _path(secret: str = PATH_SECRET) -> str:
    return f"/hooks/aliyun/report/{secret}"


def _url(client: TestClient, secret: str = PATH_SECRET) -> str:
    return str(client.make_url(_path(secret)))


async def _asked(app: App) -> str:
    """Open the demo incident and send its asks; the key of V01's ask."""
    await app.ingest("demo", cap.parse(FEED))
    await app.pump()
    (request,) = [r for r in await app.store.requests_of(1) if r.responder_key == "V01"]
    return f"request:{request.id}:aliyun"


def _to(fake: FakeAliyunSms, phone: str) -> list[str]:
    return [m.text for m in fake.messages if m.phone_numbers == [phone.removeprefix("+86")]]


async def test_an_undelivered_ask_fails_over_to_the_persons_next_number(
    app: App, fake: FakeAliyunSms, client: TestClient
) -> None:
    fake.undeliverable(FIRST.removeprefix("+86"), "MOBILE_NOT_ON_SERVICE")
    key = await _asked(app)
    answer = await fake.push_reports(_url(client))
    assert answer == {"code": 0, "msg": "接收成功", "status": 200}
    assert await app.store.delivery(key) == ("undelivered", "MOBILE_NOT_ON_SERVICE")
    await app.pump()
    assert _to(fake, SECOND) == _to(fake, FIRST)  # the same ask, at the next number
    assert await app.store.failed_addresses("V01") == {FIRST}


async def test_a_delivered_receipt_marks_every_ask_delivered(
    app: App, fake: FakeAliyunSms, client: TestClient
) -> None:
    key = await _asked(app)
    assert (await fake.push_reports(_url(client)))["status"] == 200
    assert await app.store.delivery(key) == ("delivered", None)
    statuses = {r.responder_key: r.status for r in await app.store.requests_of(1)}
    assert set(statuses.values()) == {"delivered"}
    assert await app.store.failed_addresses("V01") == set()


async def test_receipts_pushed_again_and_out_of_order_fail_over_once(
    app: App, fake: FakeAliyunSms, client: TestClient
) -> None:
    """Aliyun pushes a batch again when it missed our answer, and says nothing of order:
    a repeated or contrary receipt for the same BizId changes nothing more."""
    fake.undeliverable(FIRST.removeprefix("+86"), "MOBILE_IN_BLACK")
    key = await _asked(app)
    first = next(m for m in fake.messages if m.phone_numbers == [FIRST.removeprefix("+86")])
    for _ in range(3):
        await fake.push_reports(_url(client), [first])
    resp = await client.post(_path(), json=[first.receipts()[0] | {"success": True}])
    assert resp.status == 200
    await app.pump()
    await fake.push_reports(_url(client), [first])
    await app.pump()
    assert await app.store.delivery(key) == ("undelivered", "MOBILE_IN_BLACK")
    assert len(_to(fake, SECOND)) == 1


async def test_a_receipt_that_overtakes_the_recording_of_its_send_still_fails_over(
    app: App, fake: FakeAliyunSms, client: TestClient
) -> None:
    """Aliyun took the message and its receipt arrives while the sender still waits for
    SendSms's answer: the receipt is kept, then applied when the BizId is recorded."""
    fake.undeliverable(FIRST.removeprefix("+86"))
    fake.answer_delay_s = 0.5
    await app.ingest("demo", cap.parse(FEED))
    pump = asyncio.create_task(app.pump())
    while not _to(fake, FIRST):  # taken by Aliyun, its answer still on the way
        fake.accepted.clear()
        await asyncio.wait_for(fake.accepted.wait(), 10)
    assert (await fake.push_reports(_url(client)))["status"] == 200
    assert await app.store.parked_reports() != []
    await pump
    fake.answer_delay_s = 0
    await app.pump()
    assert await app.store.parked_reports() == []
    assert len(_to(fake, SECOND)) == 1
    assert await app.store.failed_addresses("V01") == {FIRST}


async def test_a_temporary_failure_is_recorded_without_failing_over(
    app: App, fake: FakeAliyunSms, client: TestClient
) -> None:
    """Flow control says nothing of the number: the ladder's reminders go on instead."""
    fake.undeliverable(FIRST.removeprefix("+86"), "MOBILE_SEND_LIMIT")
    key = await _asked(app)
    await fake.push_reports(_url(client))
    await app.pump()
    assert await app.store.delivery(key) == ("undelivered", "MOBILE_SEND_LIMIT")
    assert _to(fake, SECOND) == []
    assert await app.store.failed_addresses("V01") == set()


@pytest.mark.parametrize("allow", [None, ["10.0.0.0/8"]], ids=["wrong-secret", "not-allowed"])
async def test_a_forged_receipt_is_refused_and_records_nothing(
    app: App, fake: FakeAliyunSms, client: TestClient, allow: list[str] | None
) -> None:
    """A wrong path secret gets 404 (the endpoint does not show itself); a right one from
    outside ``inbound_allow`` gets 403."""
    fake.undeliverable(FIRST.removeprefix("+86"))
    key = await _asked(app)
    if allow is None:
        answer = await fake.push_reports(_url(client, "guess-" + PATH_SECRET))
        assert answer["status"] == 404
    else:
        channels = {"aliyun": _aliyun(fake, inbound_allow=allow)}
        app.settings = app.settings.model_copy(update={"channels": channels})
        assert (await fake.push_reports(_url(client)))["status"] == 403
    await app.pump()
    assert (await app.store.delivery(key))[0] not in ("undelivered", "delivered")
    assert await app.store.parked_reports() == []
    assert _to(fake, SECOND) == []
    assert not any(m.reported for m in fake.messages)  # Aliyun would push them again


async def test_malformed_receipts_are_skipped_and_the_others_taken(
    app: App, fake: FakeAliyunSms, client: TestClient
) -> None:
    key = await _asked(app)
    first = next(m for m in fake.messages if m.phone_numbers == [FIRST.removeprefix("+86")])
    good = first.receipts()[0] | {"success": "true", "err_code": "DELIVRD"}
    batch = [
        "not an object",
        good | {"biz_id": ""},
        good | {"biz_id": "9" * 65},
        good | {"success": "maybe"},
        {k: v for k, v in good.items() if k != "success"},
        good,
    ]
    resp = await client.post(_path(), json=batch)
    assert resp.status == 200 and await resp.json() == {"code": 0, "msg": "接收成功"}
    assert await app.store.delivery(key) == ("delivered", None)
    for body in (b"{}", b"not json"):
        assert (await client.post(_path(), data=body)).status == 400


async def _length(store: Store, table: str, column: str) -> int | None:
    async with store.engine.connect() as conn:
        columns = await conn.run_sync(lambda c: sa.inspect(c).get_columns(table))
    (found,) = [c for c in columns if c["name"] == column]
    return getattr(found["type"], "length", None)


async def test_migration_0012_widens_the_error_codes_and_goes_back(store: Store) -> None:
    from alembic import command

    from warnbot.store.db import alembic_config

    await store.record_delivery("SM-long", "undelivered", "MOBLLE_TERMINAL_ERROR")
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0011"))
    assert await _length(store, "early_reports", "error") == 16
    assert await _length(store, "outbox", "provider_error") == 16
    assert len(await _differences(store, ("'outbox'", "'early_reports'"))) == 2
    await store.migrate()
    assert await _length(store, "early_reports", "error") == 64
    assert await _length(store, "outbox", "provider_error") == 64
    await store.record_delivery("SM-long-2", "undelivered", "MOBLLE_TERMINAL_ERROR")
    reports = {r.provider_id: r.error for r in await store.parked_reports()}
    assert reports == {"SM-long": "MOBLLE_TERMINAL_", "SM-long-2": "MOBLLE_TERMINAL_ERROR"}
    assert await _differences(store, ("'outbox'", "'early_reports'")) == []


async def _differences(store: Store, tables: tuple[str, ...]) -> list[str]:
    """What the migrated schema lacks of ``tables.py`` for these tables (indexes kept too)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from warnbot.store.tables import metadata

    async with store.engine.connect() as conn:
        diffs = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), metadata)
        )
    return [str(d) for d in diffs if any(t in str(d) for t in tables)]


async def test_a_receipt_for_a_send_found_by_reconciliation_still_fails_over(
    app: App, fake: FakeAliyunSms, client: TestClient, clock: Clock
) -> None:
    """The worker died after Aliyun took the ask; reconciliation found it by its OutId
    but QuerySendDetails gives no BizId. The receipt, which carries both, still lands."""
    fake.undeliverable(FIRST.removeprefix("+86"), "MOBILE_NOT_ON_SERVICE")
    await app.ingest("demo", cap.parse(FEED))
    rows = await app.store.claim(100, clock(), lease_s=60)  # a worker that then died …
    (row,) = [r for r in rows if r.responder_key == "V01"]
    await app.channels["aliyun"].send(row.message())  # … after Aliyun took V01's ask
    clock.advance(120)  # its claim lapses: every row is in doubt
    await app.pump()
    assert len(_to(fake, FIRST)) == 1  # reconciled, not sent again
    assert (await fake.push_reports(_url(client)))["status"] == 200
    assert await app.store.delivery(row.key) == ("undelivered", "MOBILE_NOT_ON_SERVICE")
    await app.pump()
    assert _to(fake, SECOND) == _to(fake, FIRST)  # failed over to the next number
