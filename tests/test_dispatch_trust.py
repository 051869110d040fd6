"""The dispatcher on providers' terms: crashes reconciled, lanes, shared rate limits,
permanent failures failed over, delivery reports in any order."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import PUBLIC_URL, T0, Clock, sign, twilio_settings
from warnbot import dispatch
from warnbot.app import App, utcnow
from warnbot.channels.twilio_sms import TwilioSms
from warnbot.fakes.twilio import FakeMessage, FakeTwilio
from warnbot.model import Message, Responder, Tier
from warnbot.settings import RateLimit, Settings
from warnbot.store import Store
from warnbot.web import make_app


def _sms(i: int, priority: int = 0, body: str = "【Ⅱ级响应】测试") -> Message:
    return Message(
        f"m{priority}-{i}",
        "twilio",
        f"+86170000005{i:02d}",
        f"{body} {i}",
        1,
        f"P{i}",
        priority=priority,
    )


@pytest.fixture
async def channel(fake_twilio: FakeTwilio) -> Any:
    settings = twilio_settings(Settings(), fake_twilio.base_url)
    sms = TwilioSms(
        settings.twilio.model_copy(update={"from_number": "+15005550006"}),
        status_callback=f"{PUBLIC_URL}/hooks/twilio/status",
    )
    yield sms
    await sms.aclose()


async def test_a_message_sent_just_before_a_crash_is_reconciled_not_sent_again(
    store: Store, channel: TwilioSms, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    await store.enqueue([_sms(1), _sms(2)], T0)
    crashed = await store.claim(10, T0, lease_s=60)  # a worker took both, sent one, died
    await channel.send(crashed[0].message())
    clock.advance(61)
    await dispatch.Dispatcher(store, {"twilio": channel}, clock).pump()
    assert sorted(m.to for m in fake_twilio.messages) == ["+8617000000501", "+8617000000502"]
    assert await store.outbox_counts() == {"sent": 2}


async def test_responsible_persons_go_before_a_public_blast(
    store: Store, channel: TwilioSms, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    await store.enqueue([_sms(i, priority=1) for i in range(5)], T0)
    await store.enqueue([_sms(i + 10) for i in range(2)], T0 + timedelta(seconds=1))
    clock.advance(2)
    await dispatch.Dispatcher(store, {"twilio": channel}, clock).pump(batch=2)
    assert sorted(m.to for m in fake_twilio.messages) == ["+8617000000510", "+8617000000511"]


async def test_the_request_carries_a_validity_period_and_a_status_callback(
    store: Store, channel: TwilioSms, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    await store.enqueue([_sms(1)], T0)
    await dispatch.Dispatcher(store, {"twilio": channel}, clock).pump()
    (sent,) = fake_twilio.messages
    assert sent.params["ValidityPeriod"] == "1800"
    assert sent.status_callback == f"{PUBLIC_URL}/hooks/twilio/status"
    assert fake_twilio.rejected == []


async def test_rate_slots_follow_each_other_exactly_whenever_senders_ask(store: Store) -> None:
    t = T0.timestamp()
    assert await store.reserve("b", 1.0, 30, now_s=t) == t  # idle: go now
    assert await store.reserve("b", 3.0, 30, now_s=t) == pytest.approx(t + 1.0, abs=1e-5)
    assert await store.reserve("b", 1.0, 30, now_s=t + 0.5) == pytest.approx(t + 4.0, abs=1e-5)
    assert await store.reserve("b", 1.0, 4.0, now_s=t) is None  # beyond the horizon


async def test_there_is_no_burst_after_an_idle_spell(store: Store) -> None:
    t = T0.timestamp()
    await store.reserve("b", 0.1, 30, now_s=t)
    starts = [await store.reserve("b", 0.1, 30, now_s=t + 60) for _ in range(3)]
    assert starts == pytest.approx([t + 60.0, t + 60.1, t + 60.2], abs=1e-5)


async def test_an_idle_channel_starts_after_the_lead_time(store: Store) -> None:
    t = T0.timestamp()
    assert await store.reserve("b", 0.1, 30, now_s=t, lead_s=0.2) == pytest.approx(t + 0.2)


async def test_slots_are_timed_by_the_database_clock(store: Store) -> None:
    """Without a clock from the caller, the database's says when now is: every process
    books on its timeline and converts with its measured offset."""
    offset_s = await store.clock_offset_s()
    assert abs(offset_s) < 0.05  # one machine here: the clocks agree
    now = time.time() + offset_s
    first = await store.reserve("db", 0.5, 30)
    second = await store.reserve("db", 0.5, 30)
    assert first == pytest.approx(now, abs=0.05)
    assert second == pytest.approx(first + 0.5, abs=1e-5)


async def test_concurrent_reservations_never_share_a_slot(store: Store) -> None:
    t = T0.timestamp()
    starts = await asyncio.gather(*(store.reserve("b", 0.5, 60, now_s=t) for _ in range(10)))
    assert sorted(starts) == pytest.approx([t + 0.5 * i for i in range(10)], abs=1e-5)


class _Stamped(TwilioSms):
    """The Twilio channel noting when each send starts: what the dispatcher controls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.starts: list[float] = []

    async def send(self, message: Message) -> Any:
        self.starts.append(time.time())
        return await super().send(message)


def _busiest_second(stamps: list[float]) -> int:
    """The most stamps in any one-second window [t, t + 1) starting at a stamp."""
    ordered = sorted(stamps)
    return max(bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered))


async def test_two_dispatchers_sharing_the_store_never_exceed_the_rate(
    store: Store, fake_twilio: FakeTwilio
) -> None:
    """45 messages at 10/s span four seconds; no one-second window, wherever it starts,
    holds more than 10 sends — neither as the senders started them nor as the fake got
    them (a guard of 0.1 s: new connections and the fake's check of each request
    against the spec, one at a time, jitter arrivals on a loaded machine)."""
    settings = twilio_settings(Settings(), fake_twilio.base_url).twilio
    channel = _Stamped(settings.model_copy(update={"from_number": "+15005550006"}))
    await store.enqueue([_sms(i) for i in range(45)], utcnow())
    limits = {"twilio": RateLimit(rate_per_s=10, guard_s=0.1)}
    workers = [dispatch.Dispatcher(store, {"twilio": channel}, utcnow, limits) for _ in range(2)]
    await asyncio.gather(*(w.drain(batch=8) for w in workers))
    await channel.aclose()
    arrivals = [m.created.timestamp() for m in fake_twilio.messages]
    assert len(arrivals) == 45 and await store.outbox_counts() == {"sent": 45}
    assert _busiest_second(channel.starts) <= 10 and _busiest_second(arrivals) <= 10
    assert max(channel.starts) - min(channel.starts) >= 44 / limits["twilio"].effective_per_s * 0.98


async def test_a_wait_longer_than_the_claim_hands_the_row_back(
    store: Store, channel: TwilioSms, fake_twilio: FakeTwilio
) -> None:
    await store.enqueue([_sms(1), _sms(2)], utcnow())
    limits = {"twilio": RateLimit(rate_per_s=1 / 600)}  # one per 10 minutes
    await dispatch.Dispatcher(store, {"twilio": channel}, utcnow, limits).pump()
    assert len(fake_twilio.messages) == 1
    assert await store.outbox_counts() == {"sent": 1, "queued": 1}


def _two_phones(app: App) -> Responder:
    person = Responder(
        "V9", "测试九", Tier.VILLAGE, "449901001001", ("+8617000000901", "+8617000000902")
    )
    app.people[person.key] = person
    return person


async def test_an_invalid_number_is_recorded_on_the_person_and_the_next_one_tried(
    app: App, fake_twilio: FakeTwilio
) -> None:
    person = _two_phones(app)
    fake_twilio.fail_for(person.phones[0], 21211, 400)
    await app.store.enqueue(
        [Message("request:9:twilio", "twilio", person.phones[0], "叫应", 1, person.key)],
        app.clock(),
    )
    await app.pump()
    await app.pump()
    assert [m.to for m in fake_twilio.messages] == [person.phones[1]]
    assert await app.store.failed_addresses(person.key) == {person.phones[0]}


async def test_with_every_number_failed_the_person_is_unreachable(
    app: App, fake_twilio: FakeTwilio
) -> None:
    person = _two_phones(app)
    for phone in person.phones:
        fake_twilio.fail_for(phone, 21610, 400)
    seen: list[str] = []
    app.observers.append(lambda event, fields: seen.append(event))
    await app.store.enqueue(
        [Message("r:9", "twilio", person.phones[0], "叫应", 1, person.key)], app.clock()
    )
    for _ in range(3):
        await app.pump()
    assert "unreachable" in seen and fake_twilio.messages == []


async def _report(client: Any, sid: str, status: str, error: str = "") -> int:
    form = {"MessageSid": sid, "MessageStatus": status, "ErrorCode": error}
    url = f"{PUBLIC_URL}/hooks/twilio/status"
    resp = await client.post("/hooks/twilio/status", data=form, headers=sign(url, form))
    return int(resp.status)


async def test_delivery_reports_apply_in_any_order_and_forged_ones_are_refused(
    app: App, fake_twilio: FakeTwilio, aiohttp_client: Any
) -> None:
    person = _two_phones(app)
    await app.store.enqueue(
        [Message("k1", "twilio", person.phones[0], "叫应", 1, person.key)], app.clock()
    )
    await app.pump()
    sid = fake_twilio.messages[0].sid
    client = await aiohttp_client(make_app(app))
    assert await _report(client, sid, "delivered") == 204
    assert await _report(client, sid, "sent") == 204  # late and older: ignored
    assert await app.store.delivery("k1") == ("delivered", None)
    forged = await client.post(
        "/hooks/twilio/status", data={"MessageSid": sid, "MessageStatus": "failed"}
    )
    assert forged.status == 403 and await app.store.delivery("k1") == ("delivered", None)


async def test_a_landline_reported_undelivered_fails_over_to_the_next_number(
    app: App, fake_twilio: FakeTwilio, aiohttp_client: Any, clock: Clock
) -> None:
    person = _two_phones(app)
    await app.store.enqueue(
        [Message("k2", "twilio", person.phones[0], "叫应", 1, person.key)], app.clock()
    )
    await app.pump()
    client = await aiohttp_client(make_app(app))
    assert await _report(client, fake_twilio.messages[0].sid, "undelivered", "30006") == 204
    await app.pump()
    assert [m.to for m in fake_twilio.messages] == list(person.phones)


async def test_an_ask_queued_in_the_middle_of_a_rate_limited_blast_goes_within_a_second(
    store: Store, channel: TwilioSms, fake_twilio: FakeTwilio
) -> None:
    """Public tips book only ``tips_ahead_s`` of slots at a time, so an ask arriving
    mid-blast is claimed by the next pump and booked right behind them."""
    await store.enqueue([_sms(i, priority=1) for i in range(200)], utcnow())
    worker = dispatch.Dispatcher(
        store, {"twilio": channel}, utcnow, {"twilio": RateLimit(rate_per_s=20)}
    )

    async def daemon() -> None:  # the scheduler's outbox job, on a short tick
        while True:
            await worker.drain()
            await asyncio.sleep(0.05)

    arrived = asyncio.Event()

    async def seen(message: FakeMessage) -> None:
        if message.to.endswith("599"):
            arrived.set()

    fake_twilio.on_message = seen
    running = asyncio.create_task(daemon())
    await asyncio.sleep(2.0)  # the blast is well under way
    asked_at = time.time()
    await store.enqueue([_sms(99, priority=0, body="【Ⅰ级响应】叫应")], utcnow())
    await asyncio.wait_for(arrived.wait(), 30)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    (ask,) = [m for m in fake_twilio.messages if m.to.endswith("599")]
    tips_before = [m for m in fake_twilio.messages if m.created < ask.created]
    assert ask.created.timestamp() - asked_at < 1.2
    assert 30 <= len(tips_before) < 200  # it overtook the rest of the blast


async def test_a_claim_lapses_after_the_configured_lease_and_its_row_is_reconciled(
    app: App, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    """claim_lease_s = 5: a worker stuck 6 s on a send (the provider holds its answer)
    has lost its claim; another worker finds the row in doubt and reconciles it."""
    app.settings = app.settings.model_copy(update={"claim_lease_s": 5})
    await app.store.enqueue([_sms(1)], clock())
    fake_twilio.hold_answers()
    stuck = asyncio.create_task(app.pump())
    for _ in range(500):  # until the provider has taken it and holds the answer
        if fake_twilio.held:
            break
        await asyncio.sleep(0.01)
    clock.advance(4)
    assert await app.pump() == 0  # still claimed
    clock.advance(2)
    assert await app.pump() == 1  # lapsed: in doubt, looked up, found
    fake_twilio.release_answers()
    await stuck
    assert len(fake_twilio.messages) == 1 and await app.store.outbox_counts() == {"sent": 1}
