"""Dispatch through the real Twilio SDK to the fake provider: sent, retried, or failed."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import pytest

from tests.conftest import AUTH_TOKEN, T0, Clock, twilio_settings
from warnbot import dispatch
from warnbot.channels._http import retry_after_s
from warnbot.channels.twilio_sms import TwilioSms
from warnbot.errors import SendError
from warnbot.fakes.twilio import FakeTwilio
from warnbot.model import Message, Receipt
from warnbot.settings import Settings
from warnbot.store import Store


def _messages(n: int) -> list[Message]:
    return [
        Message(f"m{i}", "twilio", f"+86170000004{i:02d}", f"【Ⅱ级响应】测试 {i}", 1, f"P{i}")
        for i in range(n)
    ]


@pytest.fixture
async def channel(fake_twilio: FakeTwilio) -> TwilioSms:
    settings = twilio_settings(Settings(), fake_twilio.base_url)
    sms = TwilioSms(settings.twilio.model_copy(update={"from_number": "+15005550006"}))
    yield sms
    await sms.aclose()


async def _status(store: Store) -> dict[str, int]:
    return await store.outbox_counts()


async def test_queued_messages_reach_the_provider_once_each(
    store: Store, channel: TwilioSms, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    await store.enqueue(_messages(5), T0)
    await store.enqueue(_messages(5), T0)  # the same keys again: no double
    assert await dispatch.Dispatcher(store, {"twilio": channel}, clock).pump() == 5
    assert sorted(m.to for m in fake_twilio.messages) == sorted(m.to for m in _messages(5))
    assert fake_twilio.rejected == []
    assert await _status(store) == {"sent": 5}
    assert await dispatch.Dispatcher(store, {"twilio": channel}, clock).pump() == 0


@pytest.mark.parametrize("code,status", [(20429, 429), (20500, 500), (20503, 503)])
async def test_a_transient_error_is_retried_after_a_backoff(
    store: Store, channel: TwilioSms, fake_twilio: FakeTwilio, clock: Clock, code: int, status: int
) -> None:
    await store.enqueue(_messages(1), T0)
    fake_twilio.fail_next(code, status)
    await dispatch.Dispatcher(store, {"twilio": channel}, clock).pump()
    assert await _status(store) == {"queued": 1} and fake_twilio.messages == []
    assert await dispatch.Dispatcher(store, {"twilio": channel}, clock).pump() == 0  # not yet due
    clock.advance(10)
    await dispatch.Dispatcher(store, {"twilio": channel}, clock).pump()
    assert await _status(store) == {"sent": 1} and len(fake_twilio.messages) == 1


async def test_an_invalid_number_fails_for_good(
    store: Store, channel: TwilioSms, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    (message,) = _messages(1)
    fake_twilio.fail_for(message.to, 21211, 400)
    await store.enqueue([message], T0)
    await dispatch.Dispatcher(store, {"twilio": channel}, clock).pump()
    clock.advance(3600)
    assert await dispatch.Dispatcher(store, {"twilio": channel}, clock).pump() == 0
    assert await _status(store) == {"failed": 1}


async def test_an_unreachable_provider_is_a_transient_error(store: Store, clock: Clock) -> None:
    settings = twilio_settings(Settings(), "http://127.0.0.1:9")  # discard port: refused
    sms = TwilioSms(settings.twilio)
    try:
        with pytest.raises(SendError) as caught:
            await sms.send(_messages(1)[0])
    finally:
        await sms.aclose()
    assert caught.value.retryable


async def test_wrong_credentials_are_a_permanent_error(fake_twilio: FakeTwilio) -> None:
    settings = twilio_settings(Settings(), fake_twilio.base_url, token=AUTH_TOKEN + "x")
    sms = TwilioSms(settings.twilio)
    try:
        with pytest.raises(SendError) as caught:
            await sms.send(_messages(1)[0])
    finally:
        await sms.aclose()
    assert not caught.value.retryable and caught.value.code == "20003"


async def test_a_message_for_an_unconfigured_channel_fails_without_a_send(
    store: Store, clock: Clock
) -> None:
    await store.enqueue(_messages(1), T0)
    await dispatch.Dispatcher(store, {}, clock).pump()
    assert await _status(store) == {"failed": 1}


class _Broken:
    """A channel with a bug: it raises something that is not a SendError."""

    name = "twilio"

    async def send(self, message: Message) -> Receipt:
        raise KeyError("bug")

    async def aclose(self) -> None:
        return None


async def test_a_crashing_channel_leaves_the_message_queued_for_retry(
    store: Store, clock: Clock
) -> None:
    await store.enqueue(_messages(1), T0)
    await dispatch.Dispatcher(store, {"twilio": _Broken()}, clock).pump()
    assert await _status(store) == {"queued": 1}


async def test_retries_stop_after_the_last_attempt(store: Store, clock: Clock) -> None:
    await store.enqueue(_messages(1), T0)
    for _ in range(dispatch.MAX_ATTEMPTS):
        await dispatch.Dispatcher(store, {"twilio": _Broken()}, clock).pump()
        clock.advance(600)
    assert await _status(store) == {"failed": 1}


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    assert dispatch.backoff_s(1, rng=lambda: 0.5) == 2
    assert dispatch.backoff_s(3, rng=lambda: 0.0) == 4
    assert dispatch.backoff_s(30, rng=lambda: 0.99) < 300 * 1.5
    assert T0 + timedelta(seconds=dispatch.backoff_s(2)) > T0


@pytest.mark.parametrize("code,status", [(20429, 429), (20503, 503)])
async def test_a_retry_after_from_the_provider_delays_the_retry_at_least_that_long(
    store: Store, channel: TwilioSms, fake_twilio: FakeTwilio, clock: Clock, code: int, status: int
) -> None:
    await store.enqueue(_messages(1), T0)
    fake_twilio.fail_next(code, status, retry_after_s=120)
    await dispatch.Dispatcher(store, {"twilio": channel}, clock).pump()
    clock.advance(119)  # our own backoff (at most 3 s) is long over
    assert await dispatch.Dispatcher(store, {"twilio": channel}, clock).pump() == 0
    clock.advance(2)
    assert await dispatch.Dispatcher(store, {"twilio": channel}, clock).pump() == 1
    assert await _status(store) == {"sent": 1} and len(fake_twilio.messages) == 1


async def test_the_channel_reports_the_retry_after_it_was_given(
    channel: TwilioSms, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.fail_next(20429, 429, retry_after_s=30)
    fake_twilio.fail_next(20500, 500)
    with pytest.raises(SendError) as first:
        await channel.send(_messages(1)[0])
    with pytest.raises(SendError) as second:
        await channel.send(_messages(1)[0])
    assert first.value.retryable and first.value.retry_after_s == 30
    assert second.value.retryable and second.value.retry_after_s is None


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = T0
    assert retry_after_s("120", now) == 120
    assert retry_after_s("Thu, 01 Jan 2099 00:00:00 GMT", now) > 0
    assert retry_after_s(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert retry_after_s("soon", now) is None and retry_after_s(None, now) is None


def test_without_a_retry_after_the_backoff_grows_and_is_jittered() -> None:
    waits = {dispatch.backoff_s(4) for _ in range(20)}
    assert len(waits) > 1 and all(8 <= w <= 24 for w in waits)
