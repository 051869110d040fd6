"""``warnbot user add`` and ``warnbot user token``: console accounts from the shell.

The password is read from a prompt (twice) or from stdin with ``--password-stdin``;
never from argv, where ``ps`` and shell history would keep it.
"""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime

from warnbot.console import auth
from warnbot.settings import Settings
from warnbot.store import Store
from warnbot.store.accounts import AccountExists, ConsoleStore


def read_password(from_stdin: bool) -> str:
    """The new password: stdin's first line, or typed twice at a prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("密码 password: ")
    if getpass.getpass("再次输入 again: ") != first:
        raise ValueError("两次输入不一致 the passwords differ")
    return first


async def add_user(settings: Settings, name: str, role: str, from_stdin: bool) -> int:
    store = Store.connect(settings.database_url)
    try:
        await store.migrate()
        password = read_password(from_stdin)
        await auth.add_account(ConsoleStore(store.engine), name, role, password, _now())
    except (ValueError, AccountExists) as e:
        message = f"账户已存在 account exists: {e}" if isinstance(e, AccountExists) else str(e)
        print(message, file=sys.stderr)
        return 1
    finally:
        await store.close()
    print(f"已创建账户 account created: {name} ({role})")
    return 0


async def issue_token(settings: Settings, name: str, label: str) -> int:
    store = Store.connect(settings.database_url)
    try:
        await store.migrate()
        console = ConsoleStore(store.engine)
        account = await console.account(name)
        if account is None:
            print(f"无此账户 no such account: {name}", file=sys.stderr)
            return 1
        token = await auth.issue_api_token(console, account, label, _now())
        await console.audit(name, "api_token_issued", _now(), target=f"account:{name}")
    finally:
        await store.close()
    print(token)
    return 0


def _now() -> datetime:
    return datetime.now(UTC)
