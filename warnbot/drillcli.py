"""``warnbot drill …``: plan unannounced drills and print drill reports.

``register(sub)`` adds the commands to the ``warnbot`` parser:

    warnbot drill schedule --start 2026-08-20T08:00+08:00 --end 2026-08-20T18:00+08:00 \\
        --level Ⅱ --region 449901 --hazard 暴雨 --headline "示例县暴雨橙色预警（演练）"
    warnbot drill list
    warnbot drill cancel PLAN_ID
    warnbot drill report INCIDENT_ID --format csv|tiers-csv|html [--output FILE] [--tz ZONE]

The moment a drill fires is never printed: in a 双盲 drill nobody, the
administrator included, knows more than the window.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from warnbot import drillreport, drills
from warnbot.cliargs import command
from warnbot.model import Level
from warnbot.settings import load_settings
from warnbot.store import Store, db


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``drill schedule|list|cancel|report`` to the ``warnbot`` command line."""
    drill = sub.add_parser("drill", help="演练 drills").add_subparsers(
        required=True, metavar="ACTION"
    )
    schedule = command(drill, "schedule", "安排双盲演练 plan an unannounced drill", _schedule)
    schedule.add_argument("--start", required=True, type=_time, help="window start, ISO 8601")
    schedule.add_argument("--end", required=True, type=_time, help="window end, ISO 8601")
    schedule.add_argument("--level", required=True, type=Level.parse, help="Ⅳ/Ⅲ/Ⅱ/Ⅰ")
    schedule.add_argument("--region", required=True, action="append", help="division code")
    schedule.add_argument("--hazard", required=True)
    schedule.add_argument("--headline", required=True)
    schedule.add_argument("--seed", type=int, help="fix the moment (tests, re-runs)")
    schedule.add_argument("--by", default="", help="who plans it (audit)")
    command(drill, "list", "查看演练计划 list drill plans", _list)
    cancel = command(drill, "cancel", "取消演练 cancel a plan not yet fired", _cancel)
    cancel.add_argument("plan_id", type=int)
    report = command(drill, "report", "演练报告 drill report", _report)
    report.add_argument("incident_id", type=int)
    report.add_argument("--format", choices=["csv", "tiers-csv", "html"], default="csv")
    report.add_argument("--output", type=Path, help="write here instead of standard output")
    report.add_argument("--tz", default="Asia/Shanghai", help="time zone of the HTML page")


def _time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give the time zone, e.g. +08:00")
    return value.astimezone(UTC)


def _store(args: argparse.Namespace) -> Store:
    return Store(db.create_engine(load_settings(args.config).database_url))


def _schedule(args: argparse.Namespace) -> int:
    try:
        plan = drills.scheduled(
            args.start, args.end, args.hazard, args.headline, args.level, args.region,
            seed=args.seed, created_by=args.by,
        )  # fmt: skip
    except ValueError as e:
        print(f"演练计划无效 invalid drill plan: {e}", file=sys.stderr)
        return 2
    stored = asyncio.run(_with_store(args, lambda s: s.schedule_drill(plan, datetime.now(UTC))))
    print(
        f"已安排演练 drill planned #{stored.id}: {stored.window_start.isoformat()} – "
        f"{stored.window_end.isoformat()}，时刻保密 the moment stays secret"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    plans = asyncio.run(_with_store(args, lambda s: s.drill_plans()))
    now = datetime.now(UTC)
    for plan in plans:
        shown = drills.redacted(plan, now)
        print(
            f"#{shown['id']} {shown['status']} {shown['window_start'].isoformat()} – "
            f"{shown['window_end'].isoformat()} {','.join(shown['regions'])} "
            f"{shown['level']} {shown['hazard']} {shown['headline']}"
        )
    return 0


def _cancel(args: argparse.Namespace) -> int:
    if asyncio.run(_with_store(args, lambda s: s.cancel_drill(args.plan_id))):
        print(f"已取消 cancelled #{args.plan_id}")
        return 0
    print(f"#{args.plan_id}: 无此待执行计划 no such plan waiting to fire", file=sys.stderr)
    return 1


def _report(args: argparse.Namespace) -> int:
    try:
        tz: tzinfo = ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"未知时区 unknown time zone {args.tz!r}", file=sys.stderr)
        return 2
    report = asyncio.run(_with_store(args, lambda s: load_report(s, args.incident_id)))
    if report is None:
        print(f"无此响应 no incident {args.incident_id}", file=sys.stderr)
        return 1
    if args.format == "html":
        text = drillreport.html(report, tz)
    elif args.format == "tiers-csv":
        text = drillreport.tiers_csv(report)
    else:
        text = drillreport.people_csv(report)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


async def load_report(
    store: Store, incident_id: int, now: datetime | None = None
) -> drillreport.DrillReport | None:
    """Read what the report needs from the store and build it (None: no such incident)."""
    incident = await store.incident(incident_id)
    if incident is None:
        return None
    reqs = await store.requests_of(incident_id)
    people = await store.people_by_key(r.responder_key for r in reqs)
    failures = await store.failures_since(people, incident.opened_at)
    return drillreport.build(
        incident,
        reqs,
        people,
        await store.fired_steps(incident_id),
        now or datetime.now(UTC),
        drillreport.unreachable_keys(people, failures),
    )


async def _with_store(args: argparse.Namespace, work: Any) -> Any:
    store = _store(args)
    try:
        await store.migrate()
        return await work(store)
    finally:
        await store.close()
