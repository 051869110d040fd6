"""The same 1,000 SMS through Apprise's Twilio plugin and through warnbot, side by
side, against one local fake Twilio (in a process of its own).

Apprise (a benchmark dependency only: ``pip install -e '.[bench]'``) is pointed
at the fake by overriding its plugin's endpoint here, in this script. Its Twilio
plugin waits 0.2 s between requests as shipped (``request_rate_per_sec``): the
"shipped" rate is measured on ``--shipped-sample`` messages (at 0.2 s each the
full 1,000 would take over three minutes); "raw" sets the wait to zero and sends
all of them. warnbot's side is the whole path: messages in the outbox (SQLite),
drained by the dispatcher through the Twilio channel (official SDK), every result
recorded.

    python bench/vs_apprise.py [--messages 1000] [--shipped-sample 50] [--rounds 3]

warnbot and raw Apprise alternate ``--rounds`` times (the machine is shared and
its load drifts); the figures are the medians.

Last line: {"messages", "warnbot_msgs_per_s", "apprise_raw_msgs_per_s",
"apprise_shipped_msgs_per_s", "ratio_raw", "ratio_shipped"}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import apprise
from apprise.plugins.twilio import NotifyTwilio

from warnbot import log
from warnbot.channels.twilio_sms import TwilioSms
from warnbot.dispatch import Dispatcher
from warnbot.fakes.twilio import FakeTwilio
from warnbot.model import Message
from warnbot.settings import TwilioSettings
from warnbot.store import Store

FROM = "+15005550006"
SHIPPED_WAIT_S = NotifyTwilio.request_rate_per_sec  # 0.2 s between requests, as shipped
ACCOUNT = "AC" + "c" * 32
TOKEN = "benchtoken0000notasecret"  # Apprise accepts only letters and digits here


def _serve(conn: Connection) -> None:
    async def run() -> None:
        async with FakeTwilio(ACCOUNT, TOKEN, validate=False, keep=False) as fake:
            conn.send(fake.base_url)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)
            conn.send(fake.accepted)

    asyncio.run(run())


@contextlib.contextmanager
def fake_twilio() -> Iterator[str]:
    """The fake Twilio in a process of its own: its base URL."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve, args=(child,), daemon=True)
    process.start()
    try:
        yield parent.recv()
    finally:
        parent.send("stop")
        parent.recv()
        process.join(10)


BODY = "[Level II] Rainstorm orange warning for Demo County. Reply 1 to confirm."


def numbers(n: int, prefix: str) -> list[str]:
    return [f"+86{prefix}{i:08d}" for i in range(n)]


def apprise_run(base_url: str, n: int, wait_s: float, prefix: str) -> float:
    """Seconds for Apprise to send ``n`` SMS (one notify to n targets)."""
    NotifyTwilio.notify_sms_url = base_url + "/2010-04-01/Accounts/{sid}/Messages.json"
    NotifyTwilio.request_rate_per_sec = wait_s
    targets = "/".join(numbers(n, prefix))
    sender = apprise.Apprise()
    assert sender.add(f"twilio://{ACCOUNT}:{TOKEN}@{FROM}/{targets}")
    started = time.perf_counter()
    ok = sender.notify(body=BODY)
    elapsed = time.perf_counter() - started
    assert ok, "Apprise reported a failure"
    return elapsed


async def warnbot_run(base_url: str, n: int) -> float:
    """Seconds for warnbot to drain ``n`` queued SMS through its Twilio channel."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.connect(f"sqlite+aiosqlite:///{tmp}/vs.db")
        await store.migrate()
        run = uuid.uuid4().hex[:8]
        messages = [
            Message(f"vs:{run}:{i}", "twilio", to, BODY, 1, f"P{i}")
            for i, to in enumerate(numbers(n, "171"))
        ]
        await store.enqueue(messages, datetime.now(UTC))
        settings = TwilioSettings(
            account_sid=ACCOUNT,
            auth_token=TOKEN,
            from_number=FROM,
            api_base_url=base_url,
            validity_period_s=None,
        )
        channel = TwilioSms(settings)
        dispatcher = Dispatcher(store, {"twilio": channel}, lambda: datetime.now(UTC))
        started = time.perf_counter()
        await dispatcher.drain()
        elapsed = time.perf_counter() - started
        counts = await store.outbox_counts()
        await channel.aclose()
        await store.close()
    assert counts == {"sent": n}, counts
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--shipped-sample", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    log.configure("json", level=logging.WARNING)
    logging.getLogger("apprise").setLevel(logging.ERROR)
    n = args.messages
    with fake_twilio() as base_url:
        apprise_run(base_url, 5, 0.0, "172")  # warm both sides up
        asyncio.run(warnbot_run(base_url, 20))
        ours_s, raw_runs_s = [], []
        for _ in range(args.rounds):
            ours_s.append(asyncio.run(warnbot_run(base_url, n)))
            raw_runs_s.append(apprise_run(base_url, n, 0.0, "173"))
        warnbot_s, raw_s = statistics.median(ours_s), statistics.median(raw_runs_s)
        shipped_s = apprise_run(base_url, args.shipped_sample, SHIPPED_WAIT_S, "174")
    ours, raw = n / warnbot_s, n / raw_s
    shipped = args.shipped_sample / shipped_s
    figures = {
        "messages": n,
        "warnbot_msgs_per_s": round(ours, 1),
        "apprise_raw_msgs_per_s": round(raw, 1),
        "apprise_shipped_msgs_per_s": round(shipped, 2),
        "ratio_raw": round(ours / raw, 2),
        "ratio_shipped": round(ours / shipped, 1),
        "warnbot_seconds": round(warnbot_s, 2),
        "apprise_raw_seconds": round(raw_s, 2),
        "apprise_shipped_sample": args.shipped_sample,
        "rounds": args.rounds,
        "ratio_raw_per_round": [round(a / b, 2) for a, b in zip(raw_runs_s, ours_s, strict=True)],
        "apprise_version": apprise.__version__,
    }
    print(
        f"{n} SMS: warnbot {warnbot_s:.2f} s, Apprise raw {raw_s:.2f} s; "
        f"Apprise as shipped {shipped:.2f} msg/s over {args.shipped_sample}",
        file=sys.stderr,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
