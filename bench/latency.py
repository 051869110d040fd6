"""Latency, in one process on SQLite with a fake Twilio on 127.0.0.1:

* warning → first provider call: a poll of a feed file that now holds a new red
  warning (read, parse, rules, incident opened, plan, render, outbox) and one
  outbox pump, until the fake Twilio receives the first SMS of that incident;
* ack → board: a signed Twilio SMS reply posted to the webhook, until the
  incident's board (``board.tally`` over the stored requests) counts it confirmed.

Each is repeated ``--rounds`` times (a new warning and incident each round).
Baseline, same run: a poll of the same file when nothing in it is new.

    python bench/latency.py [--rounds 30]

Last line: {"warning_to_send_p50_ms", "warning_to_send_p99_ms", "ack_to_board_p50_ms", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from warnbot import board, log  # noqa: E402
from warnbot.app import build  # noqa: E402
from warnbot.fakes.twilio import FakeTwilio  # noqa: E402
from warnbot.ingest import poller  # noqa: E402
from warnbot.settings import FeedSettings, load_settings  # noqa: E402
from warnbot.web import make_app  # noqa: E402

ACCOUNT, TOKEN = "AC" + "d" * 32, "latency-token-not-a-secret"
DEMO = ROOT / "config" / "demo"


def red_warning(n: int) -> bytes:
    """The demo's orange warning turned red, with a fresh identifier."""
    text = (DEMO / "feed" / "rainstorm_orange.xml").read_text("utf-8")
    text = text.replace("_1</identifier>", f"_r{n}</identifier>")
    return text.replace("橙色", "红色").replace("Orange", "Red").replace("orange", "red").encode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 1)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    log.configure("json", level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        feed_file = Path(tmp) / "feed.xml"
        async with FakeTwilio(ACCOUNT, TOKEN, validate=False) as fake:
            settings = load_settings(
                DEMO / "warnbot.toml", database_url=f"sqlite+aiosqlite:///{tmp}/l.db"
            )
            settings = settings.model_copy(
                update={
                    "twilio": settings.twilio.model_copy(
                        update={
                            "api_base_url": fake.base_url,
                            "account_sid": ACCOUNT,
                            "auth_token": SecretStr(TOKEN),
                            "status_callbacks": False,
                        }
                    )
                }
            )
            app = build(settings)
            await app.start()
            runner = web.AppRunner(make_app(app))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            base = f"http://127.0.0.1:{runner.addresses[0][1]}"
            app.public_url = base
            feed = FeedSettings(name="latency", url=f"file:{feed_file}", format="cap")
            to_send, to_board, idle = [], [], []
            validator = RequestValidator(TOKEN)
            async with aiohttp.ClientSession() as session:
                for n in range(args.rounds):
                    feed_file.write_bytes(red_warning(n))
                    before = len(fake.messages)
                    t0 = time.perf_counter()
                    await poller.poll(app, feed, session)
                    while len(fake.messages) == before:
                        await app.pump()
                    to_send.append(time.perf_counter() - t0)
                    t1 = time.perf_counter()
                    await poller.poll(app, feed, session)  # nothing new: the baseline
                    idle.append(time.perf_counter() - t1)
                    (incident, _), *_ = await app.store.open_incidents()
                    asked = (await app.store.requests_of(incident.id))[0]
                    phone = app.people[asked.responder_key].phones[0]
                    url = f"{base}/hooks/twilio/sms"
                    form = {"From": phone, "Body": asked.reply_code}
                    headers = {"X-Twilio-Signature": validator.compute_signature(url, form)}
                    t2 = time.perf_counter()
                    async with session.post(url, data=form, headers=headers) as r:
                        assert r.status == 200, await r.text()
                    while True:
                        now = app.clock()
                        tallies = board.tally(await app.store.requests_of(incident.id), now)
                        if sum(t.confirmed for t in tallies) >= 1:
                            break
                    to_board.append(time.perf_counter() - t2)
                    await app.store.lift(incident.id, app.clock())
            await runner.cleanup()
            await app.stop()
    figures = {
        "rounds": args.rounds,
        "warning_to_send_p50_ms": pct(to_send, 0.5),
        "warning_to_send_p99_ms": pct(to_send, 0.99),
        "ack_to_board_p50_ms": pct(to_board, 0.5),
        "ack_to_board_p99_ms": pct(to_board, 0.99),
        "idle_poll_p50_ms": pct(idle, 0.5),
        "ratio_warning_to_idle_poll": round(
            statistics.median(to_send) / statistics.median(idle), 1
        ),
        "note": "in-process: the daemon adds up to outbox_tick_s (1 s) between outbox and send",
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
