"""What `warnbot status` tells an officer about the queue before a blast."""

from __future__ import annotations

from tests.conftest import T0
from warnbot.model import Message
from warnbot.settings import RateLimit, Settings
from warnbot.status import queue_lines
from warnbot.store import Store


async def test_the_queue_shows_segments_cost_and_drain_time_per_channel(store: Store) -> None:
    body = (
        "【提示短信】" + "台风“示例”将于今夜登陆，请居民减少外出，远离危险区域。" * 3
    )  # 86 chars: 2 segments
    await store.enqueue(
        [Message(f"p{i}", "twilio", f"+8617000001{i:03d}", body, priority=1) for i in range(300)],
        T0,
    )
    settings = Settings(
        sms_channel="twilio",
        rate_limits={"twilio": RateLimit(rate_per_s=10, per_segment=True, price_per_segment=0.05)},
    )
    (line,) = await queue_lines(store, settings)
    assert line == "twilio: 待发 queued 300 条 messages, 600 段 segments, 30.00, 1.0 分钟 min"


async def test_a_queue_paced_by_a_shared_account_shows_under_each_of_its_channels(
    store: Store,
) -> None:
    await store.enqueue(
        [Message(f"v{i}", "voice", f"+861700000{i:04d}", "电话") for i in range(60)], T0
    )
    settings = Settings(
        sms_channel="twilio",
        rate_limits={"account": RateLimit(rate_per_s=1, channels=["twilio", "voice"])},
    )
    (line,) = await queue_lines(store, settings)
    assert line.startswith("voice: 待发 queued 60 条 messages, 60 段 segments, 0.00, 1.0 分钟")
