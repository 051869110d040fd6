"""The ``warnbot`` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from warnbot import drillcli, log, transfercli
from warnbot.cliargs import command
from warnbot.console.accounts_cli import add_commands as add_account_commands
from warnbot.errors import ConfigError
from warnbot.rosters.cli import add_commands as add_roster_commands
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
    command(sub, "run", "运行守护进程 run the daemon", _run)
    command(sub, "demo", "离线演示完整叫应流程 offline demo of the whole loop", _demo)
    command(sub, "check-config", "检查配置 validate the configuration", _check_config)
    command(sub, "status", "查看响应与叫应 incidents and confirmations", _status)
    ack = command(sub, "ack", "值班员登记电话确认 record a confirmation taken by phone", _ack)
    ack.add_argument("--incident", type=int, required=True, help="incident id (warnbot status)")
    ack.add_argument("--person", required=True, help="the person's roster key (编号)")
    ack.add_argument("--by", required=True, help="the duty officer's name, for the audit trail")
    ack.add_argument("--note", default="", help="what was said on the phone")
    ack.add_argument("--arrived", action="store_true", help="muster: they have arrived (到岗)")
    db = sub.add_parser("db", help="数据库 database").add_subparsers(
        required=True, metavar="ACTION"
    )
    command(db, "upgrade", "升级数据库结构 apply migrations", _db_upgrade)
    feeds = sub.add_parser("feeds", help="数据源 feeds").add_subparsers(
        required=True, metavar="ACTION"
    )
    parse = command(feeds, "parse", "解析数据源 print a feed as JSON lines", _feeds_parse)
    parse.add_argument("source", help="a file or an http(s) URL")
    parse.add_argument("--format", choices=["cap", "atom", "geojson", "usgs", "ea", "json"])
    parse.add_argument("--mapping", type=Path, help="JSON/TOML field mapping for --format json")
    rules = sub.add_parser("rules", help="规则 rules").add_subparsers(
        required=True, metavar="ACTION"
    )
    test = command(rules, "test", "用数据回放规则 replay feed files through the rules", _rules_test)
    test.add_argument("files", nargs="+", help="feed files or URLs, replayed in time order")
    add_roster_commands(sub, command)  # roster check|import, rota check, audience import
    add_account_commands(sub, command)  # user add|token|disable, token revoke
    drillcli.register(sub)  # drill schedule|list|cancel|report
    transfercli.register(sub)  # transfer board|moved
    return parser


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
    """Everything ``run`` would read, checked without starting: settings, rules and
    policy (at load), the region tree, roster, rota, transfer lists and channels."""
    from warnbot import rosters, transfers
    from warnbot.regions import load_tree
    from warnbot.rosters.rota import load_rota

    settings = load_settings(args.config)
    tree = load_tree(settings.regions) if settings.regions else None
    if tree is not None:
        print(f"行政区划 regions: {len(tree.regions)} ({settings.regions})")
    people = rosters.load(settings.roster, settings.phone_region, tree) if settings.roster else []
    if settings.roster:
        print(f"名册 roster: {len(people)} 人 persons ({settings.roster})")
    if settings.rota:
        duty = load_rota(settings.rota, people, settings.timezone, settings.phone_region)
        print(f"值班表 rota: {len(duty.shifts)} + {len(duty.recurring)} 循环 ({settings.rota})")
    if settings.transfer_lists:
        keys = {p.key for p in people} if settings.roster else None
        lists = transfers.load(settings.transfer_lists, keys, settings.phone_region)
        print(f"转移清单 transfer lists: {len(lists)} 条 entries ({settings.transfer_lists})")
    print(f"渠道 channels: {', '.join(_checked_channels(settings))}")
    print(
        f"配置有效 configuration OK: {len(settings.feeds)} feeds, {len(settings.rules)} rules, "
        f"levels {', '.join(sorted(settings.policy))}"
    )
    return 0


def _checked_channels(settings: Settings) -> list[str]:
    """The channels ``run`` will build, each built once here (its settings checked)."""
    from warnbot.app import channel_names
    from warnbot.channels import CHANNELS
    from warnbot.errors import SendError

    names = channel_names(settings)
    problems = []
    for name in names:
        try:
            CHANNELS[name](settings)
        except (SendError, ValueError) as e:
            problems.append(f"channels.{name}: {e}")
    if problems:
        raise ConfigError(problems)
    return names


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


def _ack(args: argparse.Namespace) -> int:
    from warnbot.acks import record_by_phone

    return asyncio.run(record_by_phone(_settings(args), args))


def _feeds_parse(args: argparse.Namespace) -> int:
    from warnbot.feedcli import parse_command

    language = load_settings(args.config).language if args.config else "zh"
    return parse_command(args.source, args.format, args.mapping, language)


def _rules_test(args: argparse.Namespace) -> int:
    from warnbot.feedcli import rules_test_command

    return rules_test_command(load_settings(args.config), args.files)
