"""A configured rate held for a minute: the pace warnbot sets, second by second.

Workers (processes, each with its own dispatcher) drain one queue through the
real Twilio channel to a local fake Twilio, sharing the rate limit's slots in
the database. Each send's start is stamped (what warnbot controls), and the
fake stamps each arrival (what the provider sees: the start plus the jitter of
two busy processes on two cores). From the stamps come the achieved rate and
the busiest one-second window of each.

    python bench/ratelimit.py [--rate 20] [--seconds 60] [--workers 1] [--database URL]

Several workers need a database they can share: PostgreSQL, e.g.
``--workers 2 --database postgresql+asyncpg://postgres@127.0.0.1:5432/test``.
The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import logging
import multiprocessing
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from multiprocessing import Queue

from _fake import ACCOUNT, TOKEN, fake_twilio_stamps  # bench/ is on sys.path as a script

from warnbot import log
from warnbot.channels.twilio_sms import TwilioSms
from warnbot.daemon import freeze_startup_heap
from warnbot.dispatch import Dispatcher
from warnbot.model import Message, Receipt
from warnbot.settings import RateLimit, TwilioSettings
from warnbot.store import Store


def _now() -> datetime:
    return datetime.now(UTC)


class StampedTwilio(TwilioSms):
    """The real channel, noting when each send starts: the pace warnbot sets."""

    def __init__(self, settings: TwilioSettings) -> None:
        super().__init__(settings)
        self.starts: list[float] = []

    async def send(self, message: Message) -> Receipt:
        self.starts.append(time.time())
        return await super().send(message)


async def _enqueue(url: str, n: int) -> None:
    store = Store.connect(url)
    await store.migrate()
    messages = [
        Message(
            f"rate:{uuid.uuid4().hex[:8]}:{i}",
            "twilio",
            f"+86172{i:08d}",
            "【提示】演练短信",
            None,
            f"P{i}",
        )
        for i in range(n)
    ]
    await store.enqueue(messages, _now())
    await store.close()


async def _drain(url: str, base_url: str, rate: RateLimit) -> list[float]:
    store = Store.connect(url)
    settings = TwilioSettings(
        account_sid=ACCOUNT,
        auth_token=TOKEN,
        from_number="+15005550006",
        api_base_url=base_url,
        validity_period_s=None,
    )
    channel = StampedTwilio(settings)
    freeze_startup_heap()  # as `warnbot run` does once started
    while await Dispatcher(store, {"twilio": channel}, _now, {"twilio": rate}).drain(batch=50):
        pass
    await channel.aclose()
    await store.close()
    return channel.starts


def _worker(url: str, base_url: str, rate: RateLimit, out: Queue) -> None:  # type: ignore[type-arg]
    log.configure("json", level=logging.INFO if os.environ.get("BENCH_LOG") else logging.WARNING)
    out.put(asyncio.run(_drain(url, base_url, rate)))


def busiest_window(stamps: list[float], width_s: float = 1.0) -> int:
    """The most messages in any half-open window [t, t + width) starting at a message."""
    ordered = sorted(stamps)
    return max(bisect.bisect_left(ordered, t + width_s) - i for i, t in enumerate(ordered))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database", help="default: SQLite in a temporary directory")
    parser.add_argument(
        "--guard-s", type=float, default=None, help="the limit's guard_s (default: the setting's)"
    )
    args = parser.parse_args()
    n = int(args.rate * args.seconds) + 1  # the first is free: n messages span the duration
    rate = RateLimit(rate_per_s=args.rate)
    if args.guard_s is not None:
        rate = RateLimit(rate_per_s=args.rate, guard_s=args.guard_s)
    with tempfile.TemporaryDirectory() as tmp, fake_twilio_stamps() as (base_url, stamps):
        url = args.database or f"sqlite+aiosqlite:///{tmp}/rate.db"
        asyncio.run(_enqueue(url, n))
        out: Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        workers = [
            multiprocessing.Process(target=_worker, args=(url, base_url, rate, out))
            for _ in range(args.workers)
        ]
        for w in workers:
            w.start()
        started = [t for _ in workers for t in out.get()]
        for w in workers:
            w.join()
        arrived = stamps()
    span = max(started) - min(started)
    print(
        json.dumps(
            {
                "configured_per_s": args.rate,
                "messages": len(started),
                "seconds": round(span, 2),
                "achieved_per_s": round((len(started) - 1) / span, 3),
                "max_window_per_s": busiest_window(started),
                "max_window_at_provider_per_s": busiest_window(arrived),
                "workers": args.workers,
                "guard_s": rate.guard_s,
                "database": (args.database or "sqlite").split(":", 1)[0].split("+")[0],
            }
        )
    )


if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    main()
