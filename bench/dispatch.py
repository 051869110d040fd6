"""Dispatch throughput: the outbox through the real Twilio channel, against a bare SDK loop.

Both sides send to the same local fake Twilio, which runs in a process of its
own (OpenAPI validation off, so the fake is not what is measured). The bare
loop calls the official SDK with the same concurrency and no store: the
ceiling on this machine. warnbot's run claims rows from the store, sends them
through ``TwilioSms`` and records every result.

    python bench/dispatch.py [--messages 20000] [--concurrency 50] [--database URL]

``--processes N`` measures scale-out instead: the same outbox drained by one worker
process, then by N at once, each a real ``python -m dispatch --worker`` subprocess
with its own dispatcher claiming from the shared PostgreSQL outbox, no rate limit:

    python bench/dispatch.py --processes 2 --database postgresql+asyncpg://…

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from _fake import ACCOUNT, TOKEN, fake_twilio  # bench/ is on sys.path when run as a script
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from warnbot import log
from warnbot.channels.twilio_sms import TwilioSms
from warnbot.dispatch import Dispatcher
from warnbot.model import Message
from warnbot.settings import TwilioSettings
from warnbot.store import Store
from warnbot.store.tables import outbox

_SEQ = itertools.count()
RUN = uuid.uuid4().hex[:8]  # keys unique per run: a shared database keeps old rows
BENCH = str(Path(__file__).resolve().parent)
BODY = "【Ⅱ级响应】示例县气象台发布暴雨橙色预警信号。请回复1确认收到"


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def bare_loop(base_url: str, n: int, concurrency: int) -> float:
    """Seconds for ``n`` creates through the SDK alone."""
    http = AsyncTwilioHttpClient()
    client = Client(ACCOUNT, TOKEN, http_client=http)
    client.api.base_url = base_url
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await client.messages.create_async(to=f"+86170{i:08d}", from_="+15005550006", body=BODY)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    await http.close()
    return elapsed


async def warnbot_run(
    base_url: str, n: int, concurrency: int, url: str, round_no: int = 0
) -> tuple[float, float]:
    """Seconds and CPU seconds to drain ``n`` queued messages through the dispatcher."""
    store = Store.connect(url)
    await store.migrate()
    now = datetime.now(UTC)
    await store.enqueue(
        [
            Message(f"bench:{RUN}:{next(_SEQ)}", "twilio", f"+86171{i:08d}", BODY, 1, f"P{i}")
            for i in range(n)
        ],
        now,
    )
    settings = TwilioSettings(
        account_sid=ACCOUNT,
        auth_token=TOKEN,
        from_number="+15005550006",
        api_base_url=base_url,
        validity_period_s=None,
    )
    channel = TwilioSms(settings)
    dispatcher = Dispatcher(
        store, {"twilio": channel}, lambda: datetime.now(UTC), concurrency=concurrency
    )
    cpu, started = _cpu_s(), time.perf_counter()
    await dispatcher.drain(batch=concurrency * 8)
    elapsed, cpu_used = time.perf_counter() - started, _cpu_s() - cpu
    counts = await store.outbox_counts()
    await channel.aclose()
    await store.close()
    assert set(counts) == {"sent"}, counts  # every message sent, none left or failed
    return elapsed, cpu_used


def _settings(base_url: str) -> TwilioSettings:
    return TwilioSettings(
        account_sid=ACCOUNT,
        auth_token=TOKEN,
        from_number="+15005550006",
        api_base_url=base_url,
        validity_period_s=None,
    )


async def worker(url: str, base_url: str, concurrency: int) -> dict[str, float]:
    """One worker process: ready, wait for "go" on stdin, drain the shared outbox."""
    store = Store.connect(url)
    channel = TwilioSms(_settings(base_url))
    dispatcher = Dispatcher(
        store, {"twilio": channel}, lambda: datetime.now(UTC), concurrency=concurrency
    )
    await store.outbox_counts()  # connected before the clock starts
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    cpu, started = _cpu_s(), time.time()
    sent = await dispatcher.drain(batch=concurrency * 8)
    ended, cpu_used = time.time(), _cpu_s() - cpu
    await channel.aclose()
    await store.close()
    return {"claimed": sent, "started": started, "ended": ended, "cpu_s": cpu_used}


def processes_run(
    url: str, base_url: str, n: int, processes: int, concurrency: int
) -> tuple[float, float]:
    """Seconds for ``processes`` worker subprocesses to drain ``n`` queued messages,
    and the CPU seconds they used together."""
    asyncio.run(_enqueue(url, n))
    env = os.environ | {"PYTHONPATH": os.pathsep.join([BENCH, *sys.path])}
    command = [sys.executable, "-m", "dispatch", "--worker", url, base_url, str(concurrency)]
    workers = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(processes)
    ]
    for w in workers:
        assert w.stdout is not None and w.stdout.readline().strip() == "ready"
    for w in workers:
        assert w.stdin is not None
        w.stdin.write("go\n")
        w.stdin.flush()
    results = [json.loads(w.communicate()[0].splitlines()[-1]) for w in workers]
    assert sum(r["claimed"] for r in results) == n, results  # each row claimed once
    counts = asyncio.run(_counts(url))
    assert counts.get("sent") == n and set(counts) <= {"sent"}, counts
    seconds = max(r["ended"] for r in results) - min(r["started"] for r in results)
    return seconds, sum(r["cpu_s"] for r in results)


async def _enqueue(url: str, n: int) -> None:
    store = Store.connect(url)
    await store.migrate()
    async with store.engine.begin() as conn:  # a clean outbox: each run counts only its own
        await conn.execute(outbox.delete())
    await store.enqueue(
        [
            Message(f"bench:{RUN}:{next(_SEQ)}", "twilio", f"+86171{i:08d}", BODY, 1, f"P{i}")
            for i in range(n)
        ],
        datetime.now(UTC),
    )
    await store.close()


async def _counts(url: str) -> dict[str, int]:
    store = Store.connect(url)
    counts = await store.outbox_counts()
    await store.close()
    return counts


def scale_out(args: argparse.Namespace) -> None:
    """One process, then ``--processes`` at once, then the bare SDK loop in the main
    process (the ceiling this fake allows), alternating ``--rounds`` times."""
    if not (args.database or "").startswith("postgresql"):
        raise SystemExit("--processes needs --database postgresql+asyncpg://…")
    n, rounds = args.messages, []
    for _ in range(args.rounds):
        with fake_twilio() as base_url:
            one, one_cpu = processes_run(args.database, base_url, n, 1, args.concurrency)
            many, many_cpu = processes_run(
                args.database, base_url, n, args.processes, args.concurrency
            )
            ceiling = asyncio.run(bare_loop(base_url, n, args.concurrency))
        rounds.append(
            {
                "one_s": one,
                "many_s": many,
                "ceiling_s": ceiling,
                "scaling": one / many,
                "cpu_ms_per_msg_one": one_cpu * 1000 / n,
                "cpu_ms_per_msg_many": many_cpu * 1000 / n,
            }
        )
        print(json.dumps(rounds[-1]), file=sys.stderr)
    one_s = statistics.median(r["one_s"] for r in rounds)
    many_s = statistics.median(r["many_s"] for r in rounds)
    print(
        json.dumps(
            {
                "messages": n,
                "processes": args.processes,
                "one_process_msgs_per_s": round(n / one_s),
                "n_processes_msgs_per_s": round(n / many_s),
                "ceiling_msgs_per_s": round(n / statistics.median(r["ceiling_s"] for r in rounds)),
                "scaling": round(statistics.median(r["scaling"] for r in rounds), 2),
                "cpu_ms_per_msg_one": round(
                    statistics.median(r["cpu_ms_per_msg_one"] for r in rounds), 3
                ),
                "cpu_ms_per_msg_many": round(
                    statistics.median(r["cpu_ms_per_msg_many"] for r in rounds), 3
                ),
                "rounds": len(rounds),
                "concurrency": args.concurrency,
                "database": "postgresql",
            }
        )
    )


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        url, base_url, concurrency = sys.argv[2], sys.argv[3], int(sys.argv[4])
        log.configure("json", level=logging.WARNING)
        print(json.dumps(asyncio.run(worker(url, base_url, concurrency))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternate the two sides this many times; report medians",
    )
    parser.add_argument("--database", help="default: SQLite in a temporary directory")
    parser.add_argument(
        "--log", action="store_true", help="log every send as JSON to stderr, as the daemon does"
    )
    parser.add_argument(
        "--processes", type=int, help="scale-out: 1 worker process against this many"
    )
    args = parser.parse_args()
    log.configure("json", level=logging.INFO if args.log else logging.WARNING)
    if args.processes:
        scale_out(args)
        return
    rounds = [one_round(args, i) for i in range(args.rounds)]
    for r in rounds:
        print(json.dumps(r), file=sys.stderr)
    print(json.dumps(summary(rounds, args)))


def one_round(args: argparse.Namespace, i: int) -> dict[str, float]:
    """The bare SDK loop, then warnbot, against one fresh fake and database."""
    n = args.messages
    with tempfile.TemporaryDirectory() as tmp, fake_twilio() as base_url:
        url = args.database or f"sqlite+aiosqlite:///{tmp}/bench.db"
        cpu = _cpu_s()
        ceiling_s = asyncio.run(bare_loop(base_url, n, args.concurrency))
        ceiling_cpu_s = _cpu_s() - cpu
        seconds, cpu_s = asyncio.run(warnbot_run(base_url, n, args.concurrency, url, i))
    return {
        "seconds": seconds,
        "ceiling_seconds": ceiling_s,
        "ratio": ceiling_s / seconds,
        "cpu_ms_per_msg": cpu_s * 1000 / n,
        "ceiling_cpu_ms_per_msg": ceiling_cpu_s * 1000 / n,
    }


def summary(rounds: list[dict[str, float]], args: argparse.Namespace) -> dict[str, object]:
    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    n = args.messages
    return {
        "messages": n,
        "seconds": round(median("seconds"), 2),
        "msgs_per_s": round(n / median("seconds")),
        "ceiling_msgs_per_s": round(n / median("ceiling_seconds")),
        "ratio": round(median("ratio"), 2),
        "cpu_ms_per_msg": round(median("cpu_ms_per_msg"), 3),
        "ceiling_cpu_ms_per_msg": round(median("ceiling_cpu_ms_per_msg"), 3),
        "rounds": len(rounds),
        "concurrency": args.concurrency,
        "database": (args.database or "sqlite").split(":", 1)[0].split("+")[0],
        "logging": args.log,
    }


if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    main()
