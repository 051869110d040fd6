"""``warnbot status``: open incidents, their boards, the outbox and the feeds.

First which roster is in use and who is on duty (值班员, 带班领导). Per open
incident: the 叫应 board per tier, the muster board, the reports back
(回执) summed per region, and the transfer lists (转移清单) with what is still
to move. ``incident_lines`` builds those lines from the store alone, so tests
and other front ends read the same text.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from warnbot import board, receipts, regions, transfers
from warnbot.errors import ConfigError
from warnbot.model import Incident
from warnbot.plan import duty_officers
from warnbot.regions import RegionTree, load_tree
from warnbot.rosters.rota import load_rota, on_shift
from warnbot.settings import Settings
from warnbot.sms import cost_for
from warnbot.store import Store
from warnbot.store.imports import ImportState

MAX_REGIONS = 20  # region rows of the report sums; a county can have hundreds of villages
MAX_TRANSFER_LINES = 30


async def print_status(settings: Settings) -> int:
    store = Store.connect(settings.database_url)
    tree = load_tree(settings.regions) if settings.regions else None
    try:
        await store.migrate()
        now = datetime.now(UTC)
        print(roster_line(await store.roster_state()))
        if (lists := await store.transfer_lists_state()) is not None:
            print(roster_line(lists, "转移清单 transfer lists"))
        opened = await store.open_incidents()
        for line in await duty_lines(store, settings, now, tree, [i for i, _ in opened]):
            print(line)
        print(f"进行中的响应 open incidents: {len(opened)}")
        for incident, _ in opened:
            print("\n" + "\n".join(await incident_lines(store, incident, now, tree)))
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


def roster_line(state: ImportState | None, label: str = "名册 roster") -> str:
    """Which roster (or, by ``label``, which transfer lists) the daemons use: its
    version, where it came from, when."""
    if state is None:
        return f"{label}: 未导入 none imported"
    via = "配置文件 config" if state.via == "config" else "导入 import"
    return (
        f"{label}: 版本 version {state.version}, {via} {state.source} ({state.imported_at:%F %T}Z)"
    )


async def duty_lines(
    store: Store,
    settings: Settings,
    now: datetime,
    tree: RegionTree | None,
    incidents: Iterable[Incident] = (),
) -> list[str]:
    """Who is on duty now (值班员, 带班领导) for the office's region and for each open
    incident's region, from the configured rota and the stored roster."""
    if settings.rota is None:
        return []
    people = {p.key: p for p in await store.roster()}
    try:
        rota = load_rota(settings.rota, people.values(), settings.timezone, settings.phone_region)
    except ConfigError as e:
        return [f"值班表有误 rota has {len(e.problems)} problem(s): {e.problems[0]}"]
    codes = [r.code for r in tree.roots()] if tree is not None else []
    codes += [i.region_code for i in incidents if i.region_code not in codes]
    fallback = duty_officers(people.values())
    return ["当前值班 on duty now:"] + [
        "  " + on_shift(rota, code, now, people, fallback).line() for code in codes
    ]


async def incident_lines(
    store: Store, incident: Incident, now: datetime, tree: RegionTree | None = None
) -> list[str]:
    """One incident as ``warnbot status`` prints it: heading, then indented boards."""
    out = [
        f"#{incident.id} {incident.level.roman}级 {incident.hazard} "
        f"{incident.region_code} — {incident.headline} (opened {incident.opened_at:%F %T}Z)"
    ]
    requests = await store.requests_of(incident.id)
    tallies = board.tally(requests, now)
    out += [*board.lines(tallies), board.summary(tallies)]
    musters = board.muster(requests)
    if musters:
        names = {p.key: p.name for p in await store.roster()}
        out += board.muster_lines(musters, names, now)
    out += report_lines(await store.report_totals(incident.id, tree), incident.region_code)
    out += transfer_lines(await store.transfer_board(incident.id))
    return [out[0], *("  " + line for line in out[1:])]


def report_lines(
    totals: dict[str, receipts.RegionTotals], within: str = "", limit: int = MAX_REGIONS
) -> list[str]:
    """The reports back summed per region, the widest regions first (a county before its
    townships), at most ``limit`` rows; nothing when nobody reported. Regions above
    ``within`` (the incident's own region) are left out: they repeat its total."""
    inside = regions.prefix(within) if regions.is_code(within) else ""
    kept = [r for r in totals.values() if r.code.startswith(inside)] or list(totals.values())
    if not kept:
        return []
    rows = sorted(kept, key=lambda r: (len(_significant(r.code)), r.code))
    lines = ["回执汇总 reports back:"]
    for r in rows[:limit]:
        name = f" {r.name}" if r.name else ""
        lines.append(
            f"  {r.code}{name}: {receipts.totals_line(r.total)} ({r.total.reports} 条 reports)"
        )
    if len(rows) > limit:
        lines.append(f"  … 另有 {len(rows) - limit} 个区划 more regions")
    return lines


def _significant(code: str) -> str:
    return regions.prefix(code) if regions.is_code(code) else code


def transfer_lines(
    progress: list[transfers.PersonProgress], limit: int = MAX_TRANSFER_LINES
) -> list[str]:
    """The transfer board: a total, then each person's list and what is not yet moved."""
    if not progress:
        return []
    moved = sum(p.moved for p in progress)
    entries = sum(len(p.states) for p in progress)
    people = sum(p.people_moved for p in progress)
    total = sum(p.people_total for p in progress)
    lines = transfers.board_lines(progress)
    head = f"转移清单 transfer lists: 已转移 {moved}/{entries} 户 moved, {people}/{total} 人 people"
    shown = ["  " + line for line in lines[:limit]]
    more = [f"  … 另有 {len(lines) - limit} 行 more lines"] if len(lines) > limit else []
    return [head, *shown, *more]


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
