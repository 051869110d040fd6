"""The ``warnbot`` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from warnbot import log
from warnbot.errors import ConfigError
from warnbot.settings import Settings, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as e:
        print("配置错误 configuration errors:", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="warnbot", description="预警叫应 early-warning broadcaster with confirmation tracking"
    )
    parser.add_argument("--config", type=Path, help="TOML config (default: $WARNBOT_CONFIG)")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    _command(sub, "run", "运行守护进程 run the daemon", _run)
    _command(sub, "demo", "离线演示完整叫应流程 offline demo of the whole loop", _demo)
    _command(sub, "check-config", "检查配置 validate the configuration", _check_config)
    _command(sub, "status", "查看响应与叫应 incidents and confirmations", _status)
    db = sub.add_parser("db", help="数据库 database").add_subparsers(
        required=True, metavar="ACTION"
    )
    _command(db, "upgrade", "升级数据库结构 apply migrations", _db_upgrade)
    return parser


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    text: str,
    handler: Callable[[argparse.Namespace], int],
) -> None:
    sub.add_parser(name, help=text, description=text).set_defaults(handler=handler)


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    log.configure(settings.log_format)
    return settings


def _run(args: argparse.Namespace) -> int:
    from warnbot.app import build
    from warnbot.daemon import run

    run(build(_settings(args)))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from warnbot.demo import run_demo

    return asyncio.run(run_demo(args.config))


def _check_config(args: argparse.Namespace) -> int:
    from warnbot import roster

    settings = load_settings(args.config)
    if settings.roster:
        people = roster.load(settings.roster)
        print(f"名册 roster: {len(people)} 人 persons ({settings.roster})")
    print(
        f"配置有效 configuration OK: {len(settings.feeds)} feeds, {len(settings.rules)} rules, "
        f"levels {', '.join(sorted(settings.policy))}"
    )
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from warnbot.store import Store

    async def upgrade() -> None:
        store = Store.connect(_settings(args).database_url)
        await store.migrate()
        await store.close()

    asyncio.run(upgrade())
    print("数据库已是最新 database is up to date")
    return 0


def _status(args: argparse.Namespace) -> int:
    from warnbot.status import print_status

    return asyncio.run(print_status(_settings(args)))
