"""Accounts and roles: argon2 password hashes, sign-in with lock-out, bearer tokens.

Roles rank viewer < duty_officer < admin: a viewer reads, a duty officer acts
(trigger, lift, remind, record a phone confirmation), an administrator also
reads the audit log. A run of ``max_failures`` wrong passwords locks the
name for ``lock_s``; while locked even the right password is refused. Names
without an account are counted and locked the same way, so no answer says
whether a name exists.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from warnbot.store.accounts import Account, ConsoleStore

ROLES = ("viewer", "duty_officer", "admin")
_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the name is unknown, so a wrong name costs as long as a wrong
    password (made on first use: hashing takes a moment the command line need not wait)."""
    return _HASHER.hash("warnbot-no-such-account")


def rank(role: str) -> int:
    """0 viewer, 1 duty officer, 2 administrator; -1 for anything else."""
    return ROLES.index(role) if role in ROLES else -1


def allows(role: str, needed: str) -> bool:
    return rank(role) >= rank(needed) >= 0


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("密码至少8个字符 password must have at least 8 characters")
    return _HASHER.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def digest(token: str) -> str:
    """How session and API tokens are kept at rest."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class SignIn:
    """What a sign-in attempt did: ``ok`` (with the account), ``wrong`` or ``locked``."""

    outcome: str
    account: Account | None = None
    locked_until: datetime | None = None


async def sign_in(
    store: ConsoleStore,
    name: str,
    password: str,
    now: datetime,
    *,
    max_failures: int,
    lock_s: float,
) -> SignIn:
    """Check a name and password, counting failures towards the lock-out.

    Failures are counted per name typed, whether an account has it or not, so an
    unknown name is locked out exactly as a real one is: the answers never tell
    which names exist."""
    key = name[:100]
    locked = await store.name_locked(key, now)
    if locked is not None:
        return SignIn("locked", None, locked)
    account = await store.account(name)
    usable = account is not None and account.active
    hashed = account.password_hash if account is not None and usable else _dummy_hash()
    if not (check_password(hashed, password) and usable):
        until = await store.name_failed(key, now, max_failures, lock_s)
        return SignIn("locked" if until else "wrong", None, until)
    await store.name_ok(key)
    return SignIn("ok", account)


async def add_account(
    store: ConsoleStore, name: str, role: str, password: str, now: datetime
) -> int:
    """Create an account; ValueError for an unknown role or a short password."""
    if role not in ROLES:
        raise ValueError(f"未知角色 unknown role {role!r} (known: {', '.join(ROLES)})")
    if not name.strip():
        raise ValueError("用户名不能为空 the name must not be empty")
    return await store.add_account(name.strip(), role, hash_password(password), now)


async def issue_api_token(store: ConsoleStore, account: Account, label: str, now: datetime) -> str:
    """A new bearer token for ``account``; only its digest is stored, so show it once."""
    token = new_token()
    await store.add_api_token(digest(token), account.id, label, now)
    return token
