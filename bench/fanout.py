"""Fan-out: from a Level Ⅰ incident to N rendered messages in the outbox.

The incident opens through ``App.open`` (plan, render, requests and their
messages for the responders of the demo roster, in one transaction); the rest
of the N are a public audience (提示短信, lane 1), rendered from one sandboxed
template and put in the outbox through the store's own ``enqueue``. Baseline,
same run, same database: a bare SQLAlchemy ``INSERT`` of the same N outbox rows,
built in advance (the floor for getting that many rows in).

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
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from warnbot.app import build  # noqa: E402
from warnbot.evaluate import Transition  # noqa: E402
from warnbot.model import Level, Message  # noqa: E402
from warnbot.settings import load_settings  # noqa: E402
from warnbot.store import Store  # noqa: E402
from warnbot.store.sql import enqueue  # noqa: E402
from warnbot.store.tables import outbox  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
CHUNK = 5_000
PUBLIC = (
    "【{{ office }}】{{ headline }}。台风预计{{ hours }}小时内登陆{{ region }}，"
    "请远离海边和低洼地带，加固门窗，非必要不外出。"
)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def audience(n: int, body: str, incident_id: int, tag: str) -> Iterator[list[Message]]:
    """The public audience in chunks: invented numbers, one shared text."""
    for start in range(0, n, CHUNK):
        yield [
            Message(
                f"public:{tag}:{incident_id}:{i}",
                "console",
                f"+86139{i:08d}",
                body,
                incident_id,
                None,
                priority=1,
            )
            for i in range(start, min(n, start + CHUNK))
        ]


async def warnbot_fanout(url: str, n: int) -> dict[str, float | int]:
    settings = load_settings(ROOT / "config" / "demo" / "warnbot.toml", database_url=url)
    settings = settings.model_copy(update={"sms_channel": "console"})
    app = build(settings, channels={})
    await app.start()
    try:
        t0 = time.perf_counter()
        tag = secrets.token_hex(3)
        t = Transition(
            "open", f"台风:449900:{tag}", "台风", "449900", Level.I, "台风红色预警", "bench"
        )
        incident = await app.open(t, None, "bench")
        responders = len(await app.store.requests_of(incident.id))
        template = app.renderer.env.from_string(PUBLIC)  # rendered once: one text for all
        body = template.render(
            office="示例县防汛办", headline=incident.headline, hours=6, region="示例县"
        )
        async with app.store.engine.begin() as conn:
            for chunk in audience(n - responders, body, incident.id, tag):
                await enqueue(conn, chunk, app.clock())
        seconds = time.perf_counter() - t0
        counts = await app.store.outbox_counts()
    finally:
        await app.stop()
    return {"seconds": seconds, "responders": responders, "queued": counts.get("queued", 0)}


async def baseline_insert(url: str, n: int) -> float:
    """A bare multi-row INSERT of n prepared outbox rows (in chunks, one transaction)."""
    store = Store.connect(url)
    await store.migrate()
    now = datetime.now(UTC)
    tag = secrets.token_hex(3)
    row = {
        "channel": "console",
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


async def scratch_pg() -> tuple[str, str]:
    name = f"warnbot_fanout_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name


async def drop_pg(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


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
            url, name = await scratch_pg()
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
