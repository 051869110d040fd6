"""``warnbot roster|rota|audience``: check and import the lists an office keeps.

A check prints every problem as ``FILE:LINE: what is wrong`` and exits 1 when
there is any; an import checks first and changes nothing unless the whole file
is good, then writes it in one transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warnbot.errors import ConfigError
from warnbot.settings import Settings, load_settings

Handler = Callable[[argparse.Namespace], int]
Command = Callable[[Any, str, str, Handler], argparse.ArgumentParser]
MAX_SHOWN = 200  # problems printed; a 300,000-row file can have many


def add_commands(sub: Any, command: Command) -> None:
    """Add the ``roster``, ``rota`` and ``audience`` command groups to ``sub``."""
    roster = _group(sub, "roster", "责任人名册 responder roster")
    command(roster, "check", "检查名册 validate a roster file", _roster_check).add_argument(
        "file", type=Path
    )
    command(
        roster, "import", "导入名册 validate, then replace the stored roster", _roster_import
    ).add_argument("file", type=Path)
    rota = _group(sub, "rota", "值班表 duty rota")
    check = command(rota, "check", "检查值班表 overlaps are errors, gaps warnings", _rota_check)
    check.add_argument("file", type=Path)
    check.add_argument("--roster", type=Path, help="the roster its keys name (default: config)")
    audience = _group(sub, "audience", "公众受众 public audiences for tip SMS")
    load = command(
        audience, "import", "导入受众 validate, then replace an audience", _audience_import
    )
    load.add_argument("file", type=Path)
    load.add_argument("--name", required=True, help="the audience's name, e.g. 示例县-居民")
    load.add_argument(
        "--include-opted-out",
        action="store_true",
        help="take back numbers that replied 退订 (they consented again); default: left out",
    )


def _group(sub: Any, name: str, text: str) -> Any:
    return sub.add_parser(name, help=text).add_subparsers(required=True, metavar="ACTION")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def _tree(settings: Settings) -> Any:
    from warnbot.regions import load_tree

    return load_tree(settings.regions) if settings.regions else None


def _report(problems: list[str], what: str) -> int:
    print(f"{what}有误 {len(problems)} problem(s):", file=sys.stderr)
    for problem in problems[:MAX_SHOWN]:
        print(f"  {problem}", file=sys.stderr)
    if len(problems) > MAX_SHOWN:
        print(f"  … {len(problems) - MAX_SHOWN} more", file=sys.stderr)
    return 1


# --- roster -----------------------------------------------------------------------------------


def _load_roster(args: argparse.Namespace) -> tuple[Settings, list[Any]]:
    from warnbot.rosters.people import load

    settings = _settings(args)
    return settings, load(args.file, settings.phone_region, _tree(settings))


def _tiers(people: list[Any]) -> str:
    from warnbot.rosters.people import tier_counts

    return ", ".join(f"{t.zh} {t.value} {n}" for t, n in tier_counts(people).items())


def _roster_check(args: argparse.Namespace) -> int:
    try:
        _, people = _load_roster(args)
    except ConfigError as e:
        return _report(e.problems, "名册")
    print(f"名册有效 roster OK: {len(people)} 人 persons ({_tiers(people)})")
    return 0


def _roster_import(args: argparse.Namespace) -> int:
    from warnbot.rosters.people import file_sha256

    try:
        settings, people = _load_roster(args)
        sha256 = file_sha256(args.file)
    except ConfigError as e:
        return _report(e.problems, "名册")
    state: list[Any] = []

    async def sync(store: Any) -> None:
        now = datetime.now(UTC)
        state.append(await store.import_roster(people, sha256, str(args.file), "import", now))

    _with_store(settings, sync)
    print(
        f"名册已导入 roster imported (版本 version {state[0].version}): "
        f"{len(people)} 人 persons ({_tiers(people)}); "
        "运行中的服务将自动重新加载 running daemons reload it"
    )
    return 0


def _with_store(settings: Settings, work: Callable[[Any], Any]) -> None:
    from warnbot.store import Store

    async def run() -> None:
        store = Store.connect(settings.database_url)
        try:
            await store.migrate()
            await work(store)
        finally:
            await store.close()

    asyncio.run(run())


# --- rota -------------------------------------------------------------------------------------


def _rota_check(args: argparse.Namespace) -> int:
    from warnbot.rosters import rota
    from warnbot.rosters.people import load

    now = datetime.now(UTC)
    try:
        settings = _settings(args)
        roster = args.roster or settings.roster
        people = load(roster, settings.phone_region) if roster else []
        duty = rota.load_rota(args.file, people, settings.timezone, settings.phone_region, now)
    except ConfigError as e:
        return _report(e.problems, "值班表")
    for warning in rota.gaps(duty, *rota.span(duty, now)):
        print(f"提示 warning: {args.file}: {warning}")
    print(
        f"值班表有效 rota OK: {len(duty.shifts)} 班次 shifts, "
        f"{len(duty.recurring)} 循环班次 recurring ({settings.timezone})"
    )
    return 0


# --- audience ---------------------------------------------------------------------------------


def _audience_import(args: argparse.Namespace) -> int:
    from warnbot.rosters.audience import load_audience

    started = time.perf_counter()
    try:
        settings = _settings(args)
        audience = load_audience(args.file, settings.phone_region, _tree(settings))
    except ConfigError as e:
        return _report(e.problems, "受众名单")

    kept: list[int] = []

    async def replace(store: Any) -> None:
        source, now, back = str(args.file), datetime.now(UTC), args.include_opted_out
        kept.append(await store.replace_audience(args.name, audience.members, source, now, back))

    _with_store(settings, replace)
    opted_out = len(audience.members) - kept[0]
    print(
        f"受众已导入 audience {args.name!r} imported: {kept[0]} 个号码 numbers, "
        f"{audience.duplicates} 重复 duplicates skipped, {opted_out} 已退订 opted out left out, "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0
