"""Fan-out: from a Level Ⅰ incident to N rendered messages in the outbox.

The product path, timed from the call to its return: ``App.open`` plans, renders
and stores the requests and asks of the demo roster's responsible persons (one
transaction), then ``App.send_tips`` queues a 提示短信 to every number of the
public audience in the incident's region (lane 1). The audience of N − responders
invented numbers is imported first (``Store.replace_audience``, untimed), as an
office would have done before the typhoon. Baseline in the same run and database:
a bare SQLAlchemy ``INSERT`` of N prepared outbox rows (the floor for getting that
many rows in from Python).

    python bench/fanout.py                              # 300,000 on SQLite
    python bench/fanout.py --db postgresql              # scratch db on 127.0.0.1:5432

Last line: {"messages", "seconds", "peak_rss_mb", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _pg import drop_pg, scratch_pg  # noqa: E402  (bench/ is on sys.path when run as a script)

from warnbot.app import build  # noqa: E402
from warnbot.evaluate import Transition  # noqa: E402
from warnbot.model import Level  # noqa: E402
from warnbot.settings import load_settings  # noqa: E402
from warnbot.store import Store  # noqa: E402
from warnbot.store.tables import outbox  # noqa: E402

CHUNK = 5_000


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


VILLAGES = ("449900001001", "449901001001", "449901001002", "449901002001", "449901003001")


def audience(n: int) -> dict[str, str]:
    """n invented mainland mobiles spread over the demo's villages."""
    return {f"+86139{i:08d}": VILLAGES[i % len(VILLAGES)] for i in range(n)}


async def warnbot_fanout(url: str, n: int) -> dict[str, float | int]:
    settings = load_settings(ROOT / "config" / "demo" / "warnbot.toml", database_url=url)
    settings = settings.model_copy(update={"tips_audience": "居民"})
    app = build(settings, channels={})
    await app.start()
    try:
        responders = len(app.people)
        await app.store.replace_audience("居民", audience(n - responders), "bench", app.clock())
        tag = secrets.token_hex(3)
        t = Transition(
            "open", f"台风:449900:{tag}", "台风", "449900", Level.I, "台风红色预警", "bench"
        )
        t0 = time.perf_counter()
        incident = await app.open(t, None, "bench")
        seconds = time.perf_counter() - t0
        asked = len(await app.store.requests_of(incident.id))
        counts = await app.store.outbox_counts()
    finally:
        await app.stop()
    return {"seconds": seconds, "responders": asked, "queued": counts.get("queued", 0)}


async def baseline_insert(url: str, n: int) -> float:
    """A bare multi-row INSERT of n prepared outbox rows (in chunks, one transaction)."""
    store = Store.connect(url)
    await store.migrate()
    now = datetime.now(UTC)
    tag = secrets.token_hex(3)
    row = {
        "channel": "twilio",
        "body": "x" * 60,
        "priority": 1,
        "status": "queued",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    chunks = [
        [
            {**row, "key": f"base:{tag}:{i}", "address": f"+86139{i:08d}"}
            for i in range(s, min(n, s + CHUNK))
        ]
        for s in range(0, n, CHUNK)
    ]
    t0 = time.perf_counter()
    async with store.engine.begin() as conn:
        for chunk in chunks:
            await conn.execute(outbox.insert(), chunk)
    seconds = time.perf_counter() - t0
    async with store.engine.begin() as conn:
        await conn.execute(outbox.delete().where(outbox.c.key.like(f"base:{tag}:%")))
    await store.close()
    return seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    name = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.db == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp}/fanout.db"
        else:
            url, name = await scratch_pg("warnbot_fanout")
        try:
            start_rss = rss_mb()
            result = await warnbot_fanout(url, args.messages)
            peak = rss_mb()
            base_s = await baseline_insert(url, args.messages)
        finally:
            if name:
                await drop_pg(name)
    seconds = float(result["seconds"])
    figures = {
        "messages": args.messages,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak, 1),
        "start_rss_mb": round(start_rss, 1),
        "msgs_per_s": round(args.messages / seconds),
        "responders": result["responders"],
        "queued": result["queued"],
        "baseline_insert_seconds": round(base_s, 2),
        "ratio_to_bare_insert": round(seconds / base_s, 2),
        "db": args.db,
    }
    print(
        f"{args.messages:,} messages in {seconds:.2f} s on {args.db}; "
        f"bare INSERT {base_s:.2f} s; peak RSS {peak:.0f} MB",
        file=sys.stderr,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
