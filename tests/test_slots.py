"""Rate-limit buckets and slots: per-segment cost, runs admitting and refusing late
senders, buckets shared by channels (an account) or kept per sender (a robot)."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
from collections.abc import Sequence

import pytest
from pydantic import ValidationError

from tests.conftest import T0, twilio_settings
from tests.test_channels_chat import SECRET, TOKEN, dingtalk
from warnbot import dispatch, slots
from warnbot.app import utcnow
from warnbot.channels.twilio_sms import TwilioSms
from warnbot.channels.twilio_voice import TwilioVoice
from warnbot.fakes.chatbots import FakeDingTalk
from warnbot.fakes.twilio import FakeTwilio
from warnbot.model import Message
from warnbot.settings import RateLimit, Settings
from warnbot.store import Store

LONG = "【Ⅰ级响应】" + "暴雨红色预警，请立即组织危险区域人员转移。" * 4  # UCS-2, over 70: 2 parts


def _bucket(**terms: float | bool) -> slots.Bucket:
    return slots.Bucket("channel:x", RateLimit(**terms))  # type: ignore[arg-type]


def test_a_two_part_sms_takes_two_slots_where_the_provider_meters_segments() -> None:
    metered, per_message = _bucket(rate_per_s=1, per_segment=True), _bucket(rate_per_s=1)
    assert slots.step_s([metered], 2) == pytest.approx(2 * slots.spacing_s(metered.limit))
    assert slots.step_s([per_message], 2) == pytest.approx(slots.spacing_s(per_message.limit))
    assert slots.cost(metered.limit, 3) == 3 and slots.cost(per_message.limit, 3) == 1


def test_a_message_drawing_on_two_buckets_takes_the_longer_slot() -> None:
    account, robot = _bucket(rate_per_s=10), _bucket(rate_per_s=0.5)
    assert slots.step_s([account, robot], 1) == pytest.approx(slots.spacing_s(robot.limit))


def test_a_run_admits_the_rate_in_a_second_and_then_says_how_long_to_wait() -> None:
    t = 1000.0
    run = slots.Run.of(t + 60, [_bucket(rate_per_s=2)])
    assert run.admit(t, now=t) == 0.0
    assert run.admit(t, now=t + 0.1) == 0.0
    wait_s = run.admit(t, now=t + 0.2)
    assert wait_s is not None and 0.8 < wait_s < 0.81  # the first start's second, and the wire
    assert run.admit(t, now=t + 0.2 + wait_s) == 0.0


def test_a_sender_waking_late_near_the_end_of_its_run_gives_its_slot_up() -> None:
    """slot_missed: the next run, maybe another process's, starts on time."""
    limit = RateLimit(rate_per_s=10)
    t, late_ok_s = 1000.0, slots.late_ok_s(limit)
    run = slots.Run.of(t + 1.5, [slots.Bucket("b", limit)])
    assert run.admit(t + 1.4, now=t + 1.4 + late_ok_s + 0.001) is None  # near the end: lost
    assert run.admit(t + 1.4, now=t + 1.4 + late_ok_s / 2) == 0.0  # late within its share
    early = slots.Run.of(t + 60, [slots.Bucket("b", limit)])
    assert early.admit(t, now=t + 0.5) == 0.0  # far from the end: the run absorbs it


def test_a_long_sms_at_a_slow_metered_rate_still_goes() -> None:
    run = slots.Run.of(2000.0, [_bucket(rate_per_s=1, per_segment=True)])
    assert run.admit(1000.0, parts=3, now=1000.0) == 0.0


def test_the_fuller_of_two_buckets_decides() -> None:
    t = 1000.0
    run = slots.Run.of(t + 60, [_bucket(rate_per_s=10), _bucket(rate_per_s=1)])
    assert run.admit(t, now=t) == 0.0
    wait_s = run.admit(t, now=t + 0.1)
    assert wait_s is not None and wait_s > 0.8


def test_an_account_bucket_is_shared_by_its_channels_and_a_sender_bucket_is_per_address() -> None:
    limits = {
        "twilio": RateLimit(rate_per_s=1, channels=["twilio", "voice"]),
        "dingtalk": RateLimit(rate_per_s=1 / 3, per_sender=True),
    }
    sms = slots.buckets_for(limits, "twilio", "+8617000000001")
    call = slots.buckets_for(limits, "voice", "+8617000000002")
    assert [b.key for b in sms] == [b.key for b in call] == ["channel:twilio"]
    a, b = (slots.buckets_for(limits, "dingtalk", g) for g in ("county", "town"))
    assert [x.key for x in a] == ["channel:dingtalk:county"] and a != b
    assert slots.buckets_for(limits, "wecom", "county") == ()
    assert len(slots.buckets_for(limits, "dingtalk", "g" * 300)[0].key) <= 100


def test_a_rate_per_minute_is_read_as_a_rate_per_second_and_not_both() -> None:
    assert RateLimit.model_validate({"rate_per_min": 20}).rate_per_s == pytest.approx(1 / 3)
    with pytest.raises(ValidationError, match="not both"):
        RateLimit.model_validate({"rate_per_min": 20, "rate_per_s": 1})
    with pytest.raises(ValidationError, match="above 0"):
        RateLimit.model_validate({"rate_per_min": 0})
    with pytest.raises(ValidationError):
        RateLimit.model_validate({"rate_per_s": 1, "burst": 5})  # unknown keys refused


def test_the_account_limit_paces_the_drain_estimate_not_a_per_sender_one() -> None:
    settings = Settings(
        rate_limits={
            "account": RateLimit(rate_per_s=100, channels=["twilio", "voice"]),
            "dingtalk": RateLimit(rate_per_min=20, per_sender=True),  # type: ignore[call-arg]
        }
    )
    limit = settings.limit_for("voice")
    assert limit is not None and limit.rate_per_s == 100
    assert settings.limit_for("dingtalk") is None


async def test_buckets_booked_together_start_when_the_busiest_is_free(store: Store) -> None:
    t = T0.timestamp()
    await store.reserve("a", 3.0, 30, now_s=t)  # a is busy until t + 3
    start = await store.reserve(["a", "b"], 1.0, 30, now_s=t)
    assert start == pytest.approx(t + 3.0, abs=1e-5)
    assert await store.reserve("b", 1.0, 30, now_s=t) == pytest.approx(t + 4.0, abs=1e-5)
    assert await store.reserve(["a", "b"], 1.0, 2.0, now_s=t) is None  # beyond the horizon


async def test_concurrent_bookings_of_overlapping_buckets_never_overlap(store: Store) -> None:
    t = T0.timestamp()
    sets: list[Sequence[str]] = [["a", "b"], ["b", "c"], ["a", "c"], ["b"]] * 3
    starts = await asyncio.gather(*(store.reserve(s, 0.5, 60, now_s=t) for s in sets))
    for name in "abc":
        mine = sorted(start for s, start in zip(sets, starts, strict=True) if name in s)
        assert all(b - a >= 0.5 - 1e-6 for a, b in itertools.pairwise(mine))


def _busiest_second(stamps: list[float]) -> int:
    ordered = sorted(stamps)
    return max(bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered))


async def test_sms_and_calls_on_one_account_stay_within_its_rate_together(
    store: Store, fake_twilio: FakeTwilio
) -> None:
    settings = twilio_settings(Settings(), fake_twilio.base_url).twilio.model_copy(
        update={"from_number": "+15005550006", "validity_period_s": None}
    )
    channels = {"twilio": TwilioSms(settings), "voice": TwilioVoice(settings, "https://x.org")}
    messages = [
        Message(f"s{i}", "twilio", f"+8617000001{i:03d}", "短信", 1, f"P{i}") for i in range(8)
    ] + [Message(f"v{i}", "voice", f"+8617000002{i:03d}", "电话", 1, f"Q{i}") for i in range(8)]
    await store.enqueue(messages, utcnow())
    # a guard of 0.1 s: the fake checks each request against the spec (ms each, one at a
    # time), so arrivals jitter more than the default guard allows on a loaded machine
    limits = {"twilio": RateLimit(rate_per_s=5, channels=["twilio", "voice"], guard_s=0.1)}
    started = time.monotonic()
    await dispatch.Dispatcher(store, channels, utcnow, limits).drain()
    elapsed = time.monotonic() - started
    for channel in channels.values():
        await channel.aclose()
    stamps = [m.created.timestamp() for m in fake_twilio.messages]
    stamps += [c.created.timestamp() for c in fake_twilio.calls]
    assert len(stamps) == 16 and _busiest_second(stamps) <= 5
    assert elapsed >= 15 / 5  # one account: 16 sends at 5/s, not 5/s per channel


async def test_each_robot_gets_its_own_bucket_and_the_fake_never_refuses_one(
    store: Store,
) -> None:
    """The fake DingTalk refuses a robot's fifth message in any second (130101); with a
    per-sender limit of 4/s neither robot is refused, and the two go side by side."""
    robots = {"county": (TOKEN, SECRET), "town": ("town-token", "SECtown")}
    async with FakeDingTalk(robots, per_window=(4, 1.0)) as fake:
        groups = {
            "county": {"access_token": TOKEN, "secret": SECRET},
            "town": {"access_token": "town-token", "secret": "SECtown"},
        }
        bot = dingtalk(fake.base_url, at=time.time(), groups=groups)
        bot.clock = time.time
        messages = [
            Message(f"g{group}{i}", "dingtalk", group, f"第{i}条", 1)
            for group in groups
            for i in range(10)
        ]
        await store.enqueue(messages, utcnow())
        limits = {"dingtalk": RateLimit(rate_per_s=4, per_sender=True, guard_s=0.1)}
        started = time.monotonic()
        await dispatch.Dispatcher(store, {"dingtalk": bot}, utcnow, limits).drain()
        elapsed = time.monotonic() - started
        await bot.aclose()
    assert fake.refused == [] and len(fake.accepted) == 20
    for group in groups:
        assert _busiest_second([a.at for a in fake.accepted if a.group == group]) <= 4
    assert elapsed < 9 * 1.1 / 4 + 1.5  # side by side, not 20 at 4/s one after the other
