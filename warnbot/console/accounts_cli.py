"""``warnbot user add|token|disable|enable|password`` and ``warnbot token revoke``: console
accounts and API tokens from the shell, each written to the audit log (``via`` cli, under
the operating-system user who ran it). The shell is also the way back in: an
administrator locked out, or every administrator's password forgotten, is mended here.

The password is read from a prompt (twice) or from stdin with ``--password-stdin``;
never from argv, where ``ps`` and shell history would keep it.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from warnbot.console import auth
from warnbot.settings import Settings, load_settings
from warnbot.store import Store
from warnbot.store.accounts import Account, AccountExists, ConsoleStore

Handler = Callable[[argparse.Namespace], int]
Command = Callable[[Any, str, str, Handler], argparse.ArgumentParser]


def add_commands(sub: Any, command: Command) -> None:
    """Add the ``user`` and ``token`` command groups to ``sub``."""
    user = _group(sub, "user", "控制台账户 console accounts")
    add = command(user, "add", "新建账户 create a console account", _user_add)
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=list(auth.ROLES))
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    token = command(user, "token", "签发API令牌 issue a bearer token for the JSON API", _token)
    token.add_argument("name")
    token.add_argument("--label", default="api")
    disable = command(
        user, "disable", "停用账户 refuse an account: sessions end, tokens stop", _user_disable
    )
    disable.add_argument("name")
    enable = command(user, "enable", "启用账户 let a disabled account sign in again", _user_enable)
    enable.add_argument("name")
    password = command(
        user, "password", "重设密码 set a new password: sessions end, lock-out lifted", _password
    )
    password.add_argument("name")
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    tokens = _group(sub, "token", "API令牌 bearer tokens")
    revoke = command(tokens, "revoke", "吊销令牌 revoke an account's API tokens", _token_revoke)
    revoke.add_argument("name")
    revoke.add_argument("--label", help="only the tokens issued with this label (default: all)")


def _group(sub: Any, name: str, text: str) -> Any:
    return sub.add_parser(name, help=text).add_subparsers(required=True, metavar="ACTION")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def _user_add(args: argparse.Namespace) -> int:
    return asyncio.run(add_user(_settings(args), args.name, args.role, args.password_stdin))


def _token(args: argparse.Namespace) -> int:
    return asyncio.run(issue_token(_settings(args), args.name, args.label))


def _user_disable(args: argparse.Namespace) -> int:
    return asyncio.run(disable_user(_settings(args), args.name))


def _user_enable(args: argparse.Namespace) -> int:
    return asyncio.run(enable_user(_settings(args), args.name))


def _password(args: argparse.Namespace) -> int:
    return asyncio.run(reset_password(_settings(args), args.name, args.password_stdin))


def _token_revoke(args: argparse.Namespace) -> int:
    return asyncio.run(revoke_tokens(_settings(args), args.name, args.label))


def read_password(from_stdin: bool) -> str:
    """The new password: stdin's first line, or typed twice at a prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("密码 password: ")
    if getpass.getpass("再次输入 again: ") != first:
        raise ValueError("两次输入不一致 the passwords differ")
    return first


@asynccontextmanager
async def _console(settings: Settings) -> AsyncIterator[ConsoleStore]:
    store = Store.connect(settings.database_url)
    try:
        await store.migrate()
        yield ConsoleStore(store.engine)
    finally:
        await store.close()


async def add_user(settings: Settings, name: str, role: str, from_stdin: bool) -> int:
    async with _console(settings) as console:
        try:
            password = read_password(from_stdin)
            await auth.add_account(console, name, role, password, _now())
        except (ValueError, AccountExists) as e:
            message = f"账户已存在 account exists: {e}" if isinstance(e, AccountExists) else str(e)
            print(message, file=sys.stderr)
            return 1
        await _audit(console, "account_added", name.strip(), f"role={role}")
    print(f"已创建账户 account created: {name} ({role})")
    return 0


async def issue_token(settings: Settings, name: str, label: str) -> int:
    async def act(console: ConsoleStore, account: Account) -> str:
        token = await auth.issue_api_token(console, account, label, _now())
        await _audit(console, "api_token_issued", name, f"label={label}")
        return token

    return await _on_account(settings, name, act)


async def disable_user(settings: Settings, name: str) -> int:
    async def act(console: ConsoleStore, account: Account) -> str:
        revoked = await console.disable_account(account.id, _now())
        await _audit(console, "account_disabled", name, f"tokens_revoked={revoked}")
        return f"已停用账户 account disabled: {name} (令牌吊销 tokens revoked: {revoked})"

    return await _on_account(settings, name, act)


async def enable_user(settings: Settings, name: str) -> int:
    async def act(console: ConsoleStore, account: Account) -> str:
        await console.enable_account(account)
        await _audit(console, "account_enabled", name, "")
        return f"已启用账户 account enabled: {name} (需重新签发令牌 issue new API tokens)"

    return await _on_account(settings, name, act)


async def reset_password(settings: Settings, name: str, from_stdin: bool) -> int:
    async def act(console: ConsoleStore, account: Account) -> str:
        await console.set_password(account, auth.hash_password(read_password(from_stdin)))
        await _audit(console, "password_reset", name, "")
        return f"已重设密码 password set: {name} (已登出 sessions ended)"

    return await _on_account(settings, name, act)


async def revoke_tokens(settings: Settings, name: str, label: str | None) -> int:
    async def act(console: ConsoleStore, account: Account) -> str:
        n = await console.revoke_tokens(account.id, label, _now())
        await _audit(console, "api_tokens_revoked", name, f"label={label or '*'} count={n}")
        return f"已吊销令牌 tokens revoked: {n} ({name})"

    return await _on_account(settings, name, act)


async def _on_account(
    settings: Settings, name: str, act: Callable[[ConsoleStore, Account], Awaitable[str]]
) -> int:
    """Do ``act`` to the named account and print what it says; 1 when there is no such
    account or ``act`` refuses (ValueError: a short password, passwords that differ)."""
    async with _console(settings) as console:
        account = await _account(console, name)
        if account is None:
            return 1
        try:
            said = await act(console, account)
        except ValueError as e:
            print(str(e), file=sys.stderr)
            return 1
    print(said)
    return 0


async def _account(console: ConsoleStore, name: str) -> Account | None:
    account = await console.account(name)
    if account is None:
        print(f"无此账户 no such account: {name}", file=sys.stderr)
    return account


async def _audit(console: ConsoleStore, action: str, name: str, detail: str) -> None:
    await console.audit(_operator(), action, _now(), f"account:{name}", detail, via="cli")


def _operator() -> str:
    """The operating-system user at the shell: who did it, for the audit log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "-"


def _now() -> datetime:
    return datetime.now(UTC)
