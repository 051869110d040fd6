"""Delivery reports that overtake their send: none is lost, whichever side comes first."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.conftest import T0, twilio_settings
from warnbot.app import App
from warnbot.channels.twilio_sms import TwilioSms
from warnbot.fakes.twilio import FakeTwilio
from warnbot.model import Message, Receipt, Responder, Tier
from warnbot.settings import Settings
from warnbot.store import Report, Store
from warnbot.web import make_app


def _message(key: str = "k1", to: str = "+8617000000701") -> Message:
    return Message(key, "twilio", to, "【Ⅱ级响应】测试", 1, "P1")


async def test_a_report_before_its_send_is_recorded_is_kept_and_applied_when_it_is(
    store: Store,
) -> None:
    await store.enqueue([_message()], T0)
    (row,) = await store.claim(10, T0, 60)
    assert not await store.record_delivery("SM1", "undelivered", "30006", T0)
    assert await store.parked_reports() == [Report("SM1", "undelivered", "30006")]
    applied = await store.mark_sent(row.id, Receipt("SM1"), T0)
    assert applied == [Report("SM1", "undelivered", "30006")]
    assert await store.delivery("k1") == ("undelivered", "30006")
    assert await store.parked_reports() == []


async def test_several_early_reports_apply_in_stage_order_and_only_once(store: Store) -> None:
    await store.enqueue([_message()], T0)
    (row,) = await store.claim(10, T0, 60)
    for status in ("delivered", "sent", "queued"):
        await store.record_delivery("SM2", status, None, T0)
    applied = await store.mark_sent(row.id, Receipt("SM2"), T0)
    assert [r.status for r in applied] == ["queued", "sent", "delivered"]
    assert await store.delivery("k1") == ("delivered", None)
    assert await store.settle_early(["SM2"]) == []  # taken once


async def test_a_report_after_the_send_is_recorded_applies_at_once(store: Store) -> None:
    await store.enqueue([_message()], T0)
    (row,) = await store.claim(10, T0, 60)
    assert await store.mark_sent(row.id, Receipt("SM3"), T0) == []
    assert await store.record_delivery("SM3", "delivered", None, T0)
    assert not await store.record_delivery("SM3", "sent", None, T0)  # stale
    assert await store.parked_reports() == []


async def test_a_landline_reported_before_the_sender_records_still_fails_over(
    app: App, fake_twilio: FakeTwilio, aiohttp_server: Any
) -> None:
    """The fake posts the status callback (undelivered, 30006) before it answers the
    create, so the webhook sees an id nobody has recorded yet."""
    server = await aiohttp_server(make_app(app))
    app.public_url = str(server.make_url("")).rstrip("/")
    settings = twilio_settings(Settings(), fake_twilio.base_url).twilio
    app.channels["twilio"] = TwilioSms(
        settings.model_copy(update={"from_number": "+15005550006"}),
        status_callback=f"{app.public_url}/hooks/twilio/status",
    )
    fake_twilio.send_status_callbacks = fake_twilio.callback_first = True
    person = Responder(
        "V9", "测试九", Tier.VILLAGE, "449901001001", ("+8617000000901", "+8617000000902")
    )
    app.people[person.key] = person
    fake_twilio.undeliverable(person.phones[0], 30006)
    await app.store.enqueue(
        [Message("request:9:twilio", "twilio", person.phones[0], "叫应", 1, person.key)],
        app.clock(),
    )
    await app.pump()
    assert await app.store.delivery("request:9:twilio") == ("undelivered", "30006")
    await app.pump()
    assert [m.to for m in fake_twilio.messages] == list(person.phones)
    assert await app.store.failed_addresses(person.key) == {person.phones[0]}
    assert await app.store.parked_reports() == []


async def test_migration_0008_goes_down_and_up_and_matches_the_tables(store: Store) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from warnbot.store.db import alembic_config
    from warnbot.store.tables import metadata

    async with store.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0007"))
        tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    assert "early_reports" not in tables
    await store.migrate()
    async with store.engine.connect() as conn:
        diffs = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), metadata)
        )
    assert [d for d in diffs if "early_reports" in str(d)] == []
