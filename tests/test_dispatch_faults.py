"""A provider that fails, throttles, stalls and drops connections: every message is
still delivered exactly once, retries stay bounded and the rate limit holds."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, twilio_settings
from warnbot import dispatch
from warnbot.app import utcnow
from warnbot.channels.twilio_sms import TwilioSms
from warnbot.fakes.twilio import FakeTwilio, Faults
from warnbot.model import Message
from warnbot.settings import RateLimit, Settings
from warnbot.store import Store

FAULTS = Faults(
    error_500=0.20,
    error_429=0.10,
    retry_after_s=1,
    slow=0.05,
    slow_s=1.5,  # longer than the channel's timeout: the answer is lost, the message taken
    reset=0.03,
    lost_answer=0.02,
    seed=8,
)
RATE_PER_S = 40
ATTEMPTS = 12


@pytest.fixture
async def faulty_twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, validate=False, faults=FAULTS) as fake:
        yield fake


def _busiest_second(stamps: list[float]) -> int:
    ordered = sorted(stamps)
    return max(bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered))


async def _drain(store: Store, channel: TwilioSms, deadline_s: float) -> None:
    limits = {"twilio": RateLimit(rate_per_s=RATE_PER_S)}
    worker = dispatch.Dispatcher(
        store,
        {"twilio": channel},
        utcnow,
        limits,
        max_attempts=ATTEMPTS,
        backoff_scale=0.05,
        settle_s=1.0,
    )
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        await worker.drain(batch=40)
        counts = await store.outbox_counts()
        if set(counts) <= {"sent", "failed"}:
            return
        await asyncio.sleep(0.1)


async def test_under_faults_every_message_arrives_exactly_once_within_bounded_retries(
    store: Store, faulty_twilio: FakeTwilio
) -> None:
    messages = [
        Message(f"f{i}", "twilio", f"+861700000{i:04d}", f"【演练】故障测试 {i}", 1, f"P{i}")
        for i in range(150)
    ]
    await store.enqueue(messages, utcnow())
    settings = twilio_settings(Settings(), faulty_twilio.base_url).twilio.model_copy(
        update={"from_number": "+15005550006", "timeout_s": 1.0}
    )
    channel = TwilioSms(settings)
    try:
        await _drain(store, channel, deadline_s=60)
    finally:
        await channel.aclose()
    assert await store.outbox_counts() == {"sent": 150}
    delivered = Counter(m.to for m in faulty_twilio.messages)
    assert delivered == Counter(m.to for m in messages)  # each once: none lost, none doubled
    assert set(faulty_twilio.faulted) == {"error_500", "error_429", "slow", "reset", "lost_answer"}
    # the retry policy bounds every message's attempts, faulted or not; a message in
    # doubt is looked up (a GET), never created again
    tries = Counter(to for _, to in faulty_twilio.create_log)
    assert max(tries.values()) <= ATTEMPTS
    assert sum(tries.values()) == faulty_twilio.creates > 150  # faults were retried
    # every request the provider saw counts against its rate, not only the accepted ones
    assert _busiest_second([t for t, _ in faulty_twilio.create_log]) <= RATE_PER_S
