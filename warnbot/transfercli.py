"""``warnbot transfer …``: the transfer lists (转移清单) of an incident, from the shell.

``register(sub)`` adds the commands to the ``warnbot`` parser:

    warnbot transfer board --incident 1
    warnbot transfer moved --incident 1 --person V01 --entry 3 --entry 4 --by 值班员张三
    warnbot transfer moved --incident 1 --person V01 --entry all --by 值班员张三
    warnbot transfer import 转移清单.csv

``moved`` is a duty officer marking entries moved on what they learnt by phone or
on the spot; their name is kept on each mark (the audit trail of the board).
``import`` replaces the stored lists (checked against the stored roster) and raises
their version; the configured ``transfer_lists`` file is applied again only when its
content changes, so a restart does not undo the import.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warnbot import transfers
from warnbot.cliargs import command
from warnbot.errors import ConfigError
from warnbot.rosters import file_sha256
from warnbot.settings import load_settings
from warnbot.store import Store
from warnbot.store.imports import Origin


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``transfer board|moved`` to the ``warnbot`` command line."""
    group = sub.add_parser("transfer", help="转移清单 transfer lists").add_subparsers(
        required=True, metavar="ACTION"
    )
    board = command(group, "board", "转移进度 the transfer board of an incident", _board)
    board.add_argument("--incident", type=int, required=True, help="incident id (warnbot status)")
    moved = command(group, "moved", "登记已转移 a duty officer marks entries moved", _moved)
    moved.add_argument("--incident", type=int, required=True, help="incident id (warnbot status)")
    moved.add_argument("--person", required=True, help="the responsible person's key (编号)")
    moved.add_argument(
        "--entry", action="append", required=True, help="entry number (序号), again for more; all"
    )
    moved.add_argument("--by", required=True, help="the duty officer's name, for the audit trail")
    load = command(group, "import", "导入转移清单 replace the stored transfer lists", _import)
    load.add_argument(
        "file", type=Path, help="CSV or YAML: 责任人编号, 户主, 人数, 转移路线, 安置点"
    )


def _board(args: argparse.Namespace) -> int:
    board = asyncio.run(_with_store(args, lambda s: s.transfer_board(args.incident)))
    if not board:
        print(f"响应 #{args.incident} 无转移清单 no transfer lists in this incident")
        return 0
    print("\n".join(transfers.board_lines(board)))
    return 0


def _moved(args: argparse.Namespace) -> int:
    async def mark(store: Store) -> list[transfers.Mark]:
        return await store.mark_moved_by(
            args.incident, args.person, args.entry, args.by, datetime.now(UTC)
        )

    try:
        marks = asyncio.run(_with_store(args, mark))
    except ValueError as e:
        print(f"错误 error: {e}", file=sys.stderr)
        return 1
    shown = "、".join(f"{m.no}号" for m in marks)
    if not marks:
        print(f"此前已登记 already marked moved: #{args.incident} {args.person}")
    else:
        print(f"已登记转移 marked moved: #{args.incident} {args.person} {shown} — {args.by}")
    return 0


def _import(args: argparse.Namespace) -> int:
    settings = load_settings(getattr(args, "config", None))

    async def replace(store: Store) -> tuple[int, int, int]:
        known = [p.key for p in await store.roster()]
        entries = transfers.load(args.file, known, settings.phone_region)
        sha256 = file_sha256(args.file, "transfer list")
        now = datetime.now(UTC)
        state = await store.import_transfer_lists(
            entries, Origin(sha256, str(args.file), "import", now)
        )
        return state.version, len(entries), len({e.responder_key for e in entries})

    try:
        version, count, persons = asyncio.run(_with_store(args, replace))
    except ConfigError as e:
        for problem in e.problems:
            print(problem, file=sys.stderr)
        print(
            f"转移清单未导入 transfer lists not imported: {len(e.problems)} 处错误 problems",
            file=sys.stderr,
        )
        return 1
    print(
        f"转移清单已导入 transfer lists imported (版本 version {version}): {count} 户 entries, "
        f"{persons} 名责任人 persons; 下次叫应即用 used from the next ask"
    )
    return 0


async def _with_store(args: argparse.Namespace, work: Any) -> Any:
    store = Store.connect(load_settings(getattr(args, "config", None)).database_url)
    try:
        await store.migrate()
        return await work(store)
    finally:
        await store.close()
