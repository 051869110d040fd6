"""Importing a 300,000-number public audience: reading, validating, storing.

A CSV of N residents' numbers (手机号码, 行政区划代码, as an office exports it) is
imported the way ``warnbot audience import`` does it: every row read and
validated (``load_audience``), then the audience replaced in one transaction
(``Store.replace_audience``: COPY on PostgreSQL, the driver's executemany on
SQLite). In the same run, the baseline inserts the same rows with a bare
SQLAlchemy Core ``executemany`` (``conn.execute(insert, rows)``) in one
transaction, no validation. The two alternate ``--rounds`` times; figures are medians.

    python bench/audience_import.py [--rows 300000] [--database URL]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from warnbot.regions import load_tree
from warnbot.rosters.audience import load_audience
from warnbot.store import Store
from warnbot.store.tables import audience_members, audiences

ROOT = Path(__file__).resolve().parent.parent
VILLAGES = ["449901001001", "449901001002", "449901002001", "449901002002", "449901003001"]


def write_csv(path: Path, rows: int) -> None:
    """N distinct invented mainland mobiles, some typed with spaces, spread over villages."""
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["手机号码", "行政区划代码", "备注"])
        for i in range(rows):
            number = f"1380{i:07d}"
            typed = f"{number[:3]} {number[3:7]} {number[7:]}" if i % 10 == 0 else number
            out.writerow([typed, VILLAGES[i % len(VILLAGES)], ""])


async def warnbot_import(store: Store, path: Path, name: str) -> tuple[float, float, int]:
    """(validate seconds, store seconds, numbers stored) for one full import."""
    tree = load_tree(ROOT / "config" / "demo" / "regions.toml")
    started = time.perf_counter()
    audience = load_audience(path, "CN", tree)
    validated = time.perf_counter()
    stored = await store.replace_audience(name, audience.members, str(path), datetime.now(UTC))
    return validated - started, time.perf_counter() - validated, stored


async def bare_executemany(store: Store, rows: list[tuple[str, str]]) -> float:
    """Seconds to insert the same rows with SQLAlchemy Core executemany, one transaction."""
    async with store.engine.begin() as conn:
        insert = audiences.insert().values(
            name=f"baseline-{uuid.uuid4().hex[:8]}", source="bench", imported_at=datetime.now(UTC)
        )
        audience_id = (await conn.execute(insert.returning(audiences.c.id))).scalar_one()
    started = time.perf_counter()
    async with store.engine.begin() as conn:
        params = [{"audience_id": audience_id, "phone": p, "region_code": c} for p, c in rows]
        await conn.execute(audience_members.insert(), params)
    elapsed = time.perf_counter() - started
    async with store.engine.begin() as conn:
        await conn.execute(
            audience_members.delete().where(audience_members.c.audience_id == audience_id)
        )
        await conn.execute(audiences.delete().where(audiences.c.id == audience_id))
    return elapsed


async def main(rows: int, database: str | None, rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audience.csv"
        write_csv(path, rows)
        store = Store.connect(database or f"sqlite+aiosqlite:///{tmp}/bench.db")
        await store.migrate()
        name = f"bench-{uuid.uuid4().hex[:8]}"
        members = list(load_audience(path).members.items())
        validate, insert, baseline = [], [], []
        for _ in range(rounds):
            v, s, stored = await warnbot_import(store, path, name)
            assert stored == rows, stored
            validate.append(v)
            insert.append(s)
            baseline.append(await bare_executemany(store, members))
        await store.close()
    v, s, b = (statistics.median(x) for x in (validate, insert, baseline))
    return {
        "bench": "audience_import",
        "database": (database or "sqlite").split(":", 1)[0],
        "rows": rows,
        "validate_s": round(v, 2),
        "store_s": round(s, 2),
        "import_s": round(v + s, 2),
        "import_rows_per_s": round(rows / (v + s)),
        "store_rows_per_s": round(rows / s),
        "baseline_executemany_s": round(b, 2),
        "baseline_rows_per_s": round(rows / b),
        "store_vs_baseline": round(b / s, 2),
        "import_vs_baseline": round(b / (v + s), 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", help="SQLAlchemy URL; default SQLite in a temp dir")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.rows, args.database, args.rounds))))
