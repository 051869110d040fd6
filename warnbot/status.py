"""``warnbot status``: open incidents, their boards, the outbox and the feeds."""

from __future__ import annotations

from datetime import UTC, datetime

from warnbot import board
from warnbot.settings import Settings
from warnbot.sms import cost_for
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
            requests = await store.requests_of(incident.id)
            tallies = board.tally(requests, now)
            print("\n".join(["  " + line for line in board.lines(tallies)]))
            print("  " + board.summary(tallies))
            musters = board.muster(requests)
            if musters:
                names = {p.key: p.name for p in await store.roster()}
                print("\n".join("  " + line for line in board.muster_lines(musters, names, now)))
        print(f"\n发件箱 outbox: {await store.outbox_counts()}")
        for line in await queue_lines(store, settings):
            print(f"  {line}")
        for feed in await store.feed_health():
            print(
                f"数据源 feed {feed['name']}: failures={feed['failures']} "
                f"last_success={feed['last_success']} last_error={feed['last_error']}"
            )
    finally:
        await store.close()
    return 0


async def queue_lines(store: Store, settings: Settings) -> list[str]:
    """Per channel with messages waiting: how many, segments, cost, time to drain."""
    lines = []
    for channel in sorted({settings.sms_channel, *settings.channels, *_limited(settings)}):
        waiting, texts = await store.queued_texts(channel)
        if waiting:
            guess = cost_for(texts, settings.limit_for(channel), total=waiting)
            lines.append(f"{channel}: 待发 queued {guess.line()}")
    return lines


def _limited(settings: Settings) -> set[str]:
    """The channels the rate limits name."""
    return {c for name, limit in settings.rate_limits.items() for c in limit.channels or [name]}
