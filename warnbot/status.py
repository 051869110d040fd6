"""``warnbot status``: open incidents, their boards, the outbox and the feeds."""

from __future__ import annotations

from datetime import UTC, datetime

from warnbot import board
from warnbot.settings import Settings
from warnbot.store import Store


async def print_status(settings: Settings) -> int:
    store = Store.connect(settings.database_url)
    try:
        await store.migrate()
        now = datetime.now(UTC)
        opened = await store.open_incidents()
        print(f"进行中的响应 open incidents: {len(opened)}")
        for incident, _ in opened:
            print(
                f"\n#{incident.id} {incident.level.roman}级 {incident.hazard} "
                f"{incident.region_code} — {incident.headline} (opened {incident.opened_at:%F %T}Z)"
            )
            tallies = board.tally(await store.requests_of(incident.id), now)
            print("\n".join(["  " + line for line in board.lines(tallies)]))
            print("  " + board.summary(tallies))
        print(f"\n发件箱 outbox: {await store.outbox_counts()}")
        for feed in await store.feed_health():
            print(
                f"数据源 feed {feed['name']}: failures={feed['failures']} "
                f"last_success={feed['last_success']} last_error={feed['last_error']}"
            )
    finally:
        await store.close()
    return 0
