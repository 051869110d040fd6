"""The console's part of the store: accounts, sessions, API tokens, the audit log,
and the reads the console's pages need (an incident's acks, messages and ladder steps).

``ConsoleStore`` wraps the same engine as ``Store`` (``ConsoleStore(store.engine)``),
so it adds no second connection pool. Session and API tokens are stored as
SHA-256 digests only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from warnbot.model import Incident
from warnbot.store.ladder import incident_of
from warnbot.store.metricsfold import MetricStore
from warnbot.store.previewreads import PreviewReads
from warnbot.store.reportreads import ReportReads
from warnbot.store.tables import (
    acks,
    address_failures,
    api_tokens,
    console_accounts,
    console_audit,
    console_sessions,
    escalations,
    incidents,
    outbox,
    requests,
    sign_in_throttle,
)


@dataclass(frozen=True)
class Account:
    """A console user; ``role`` is viewer, duty_officer or admin."""

    id: int
    name: str
    role: str
    password_hash: str
    failures: int = 0
    locked_until: datetime | None = None
    active: bool = True


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str
    detail: str
    via: str = "console"  # console, api or cli


@dataclass(frozen=True)
class AckRow:
    request_id: int
    path: str
    text: str
    late: bool
    received_at: datetime


@dataclass(frozen=True)
class MessageRow:
    """One outbox row as the console shows it (no address: phone numbers stay masked)."""

    key: str
    channel: str
    status: str
    responder_key: str | None
    created_at: datetime
    sent_at: datetime | None
    provider_status: str | None


class AccountExists(ValueError):
    """An account of that name is already there."""


class ConsoleStore(PreviewReads, ReportReads, MetricStore):
    """Reads and writes of the console; see the module docstring."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    # accounts -----------------------------------------------------------------

    async def add_account(self, name: str, role: str, password_hash: str, now: datetime) -> int:
        values = {"name": name, "role": role, "password_hash": password_hash, "created_at": now}
        try:
            async with self.engine.begin() as conn:
                stmt = console_accounts.insert().values(values).returning(console_accounts.c.id)
                return int((await conn.execute(stmt)).scalar_one())
        except IntegrityError:
            raise AccountExists(name) from None

    async def account(self, name: str) -> Account | None:
        query = sa.select(console_accounts).where(console_accounts.c.name == name)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().one_or_none()
        return _account(row) if row else None

    # sign-in throttle, per name typed ------------------------------------------

    async def name_locked(self, name: str, now: datetime) -> datetime | None:
        """Until when sign-ins as ``name`` are refused, or None."""
        query = sa.select(sign_in_throttle.c.locked_until).where(sign_in_throttle.c.name == name)
        async with self.engine.connect() as conn:
            until: datetime | None = (await conn.execute(query)).scalar_one_or_none()
        return until if until is not None and until > now else None

    async def name_failed(
        self, name: str, now: datetime, max_failures: int, lock_s: float
    ) -> datetime | None:
        """Count a failed sign-in as ``name`` (an account's or not); the
        ``max_failures``-th within ``lock_s`` of the one before locks the name for
        ``lock_s``. Returns when the lock ends, or None. Stale rows are dropped, so
        names tried at random do not pile up."""
        stale = now - timedelta(seconds=lock_s)
        row = sign_in_throttle.c
        async with self.engine.begin() as conn:
            await conn.execute(
                sign_in_throttle.delete().where(
                    row.last_failure_at < stale,
                    sa.or_(row.locked_until.is_(None), row.locked_until < now),
                )
            )
            found = (
                await conn.execute(sa.select(row.failures).where(row.name == name))
            ).scalar_one_or_none()
            failures = (found or 0) + 1
            until = now + timedelta(seconds=lock_s) if failures >= max_failures else None
            values = {
                "failures": 0 if until else failures,
                "locked_until": until,
                "last_failure_at": now,
            }
            if found is None:
                await conn.execute(sign_in_throttle.insert().values(name=name, **values))
            else:
                await conn.execute(sign_in_throttle.update().where(row.name == name).values(values))
            return until

    async def name_ok(self, name: str) -> None:
        """A right password: the name's failures are forgotten."""
        async with self.engine.begin() as conn:
            await conn.execute(sign_in_throttle.delete().where(sign_in_throttle.c.name == name))

    # sessions -----------------------------------------------------------------

    async def add_session(
        self, token_sha256: str, account_id: int, csrf: str, now: datetime, ttl_s: float
    ) -> None:
        values = {
            "token_sha256": token_sha256,
            "account_id": account_id,
            "csrf": csrf,
            "created_at": now,
            "expires_at": now + timedelta(seconds=ttl_s),
        }
        async with self.engine.begin() as conn:
            await conn.execute(console_sessions.insert().values(values))
            await conn.execute(console_sessions.delete().where(console_sessions.c.expires_at < now))

    async def session(self, token_sha256: str, now: datetime) -> tuple[Account, str] | None:
        """The account and CSRF token of a live session."""
        query = (
            sa.select(console_accounts, console_sessions.c.csrf)
            .join(console_sessions, console_sessions.c.account_id == console_accounts.c.id)
            .where(
                console_sessions.c.token_sha256 == token_sha256,
                console_sessions.c.expires_at > now,
                console_accounts.c.active,
            )
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().one_or_none()
        return (_account(row), str(row["csrf"])) if row else None

    async def drop_session(self, token_sha256: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                console_sessions.delete().where(console_sessions.c.token_sha256 == token_sha256)
            )

    # API tokens ---------------------------------------------------------------

    async def add_api_token(
        self, token_sha256: str, account_id: int, label: str, now: datetime
    ) -> None:
        values = {
            "token_sha256": token_sha256,
            "account_id": account_id,
            "label": label,
            "created_at": now,
        }
        async with self.engine.begin() as conn:
            await conn.execute(api_tokens.insert().values(values))

    async def token_account(self, token_sha256: str, now: datetime) -> Account | None:
        """The active account a bearer token belongs to; notes the token's use."""
        query = (
            sa.select(console_accounts)
            .join(api_tokens, api_tokens.c.account_id == console_accounts.c.id)
            .where(
                api_tokens.c.token_sha256 == token_sha256,
                api_tokens.c.revoked_at.is_(None),
                console_accounts.c.active,
            )
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(query)).mappings().one_or_none()
            if row is None:
                return None
            await conn.execute(
                api_tokens.update()
                .where(api_tokens.c.token_sha256 == token_sha256)
                .values(last_used_at=now)
            )
        return _account(row)

    async def revoke_tokens(self, account_id: int, label: str | None, now: datetime) -> int:
        """Revoke the account's live tokens (those with ``label``, or all); how many."""
        where = [api_tokens.c.account_id == account_id, api_tokens.c.revoked_at.is_(None)]
        if label is not None:
            where.append(api_tokens.c.label == label)
        async with self.engine.begin() as conn:
            done = await conn.execute(api_tokens.update().where(*where).values(revoked_at=now))
        return int(done.rowcount)

    async def disable_account(self, account_id: int, now: datetime) -> int:
        """Refuse the account from now on: its sessions end, its tokens are revoked
        (so enabling it again later revives none of them), and signing in as it
        answers as for an unknown name. Returns how many tokens were revoked."""
        async with self.engine.begin() as conn:
            await conn.execute(
                console_accounts.update()
                .where(console_accounts.c.id == account_id)
                .values(active=False)
            )
            await conn.execute(
                console_sessions.delete().where(console_sessions.c.account_id == account_id)
            )
            revoked = await conn.execute(
                api_tokens.update()
                .where(api_tokens.c.account_id == account_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return int(revoked.rowcount)

    async def enable_account(self, account: Account) -> None:
        """Let a disabled account sign in again; it needs new API tokens (disabling
        revoked the old ones)."""
        await self._amend(account, {"active": True}, sign_out=False)

    async def set_password(self, account: Account, password_hash: str) -> None:
        """A new password; whoever held the old one is signed out."""
        await self._amend(account, {"password_hash": password_hash}, sign_out=True)

    async def _amend(self, account: Account, values: dict[str, Any], sign_out: bool) -> None:
        """Change the account's row and lift the lock-out of its name (an administrator
        mends what the lock-out was for); with ``sign_out`` every session ends."""
        async with self.engine.begin() as conn:
            await conn.execute(
                console_accounts.update().where(console_accounts.c.id == account.id).values(values)
            )
            if sign_out:
                await conn.execute(
                    console_sessions.delete().where(console_sessions.c.account_id == account.id)
                )
            await conn.execute(
                sign_in_throttle.delete().where(sign_in_throttle.c.name == account.name)
            )

    # audit --------------------------------------------------------------------

    async def audit(
        self,
        actor: str,
        action: str,
        now: datetime,
        target: str = "",
        detail: str = "",
        via: str = "console",
    ) -> None:
        """Write who did what, when, and how it came (``via``: console, api, cli)."""
        values = {
            "at": now,
            "actor": actor[:100],
            "action": action[:64],
            "target": target[:200],
            "detail": detail[:4000],
            "via": via[:16],
        }
        async with self.engine.begin() as conn:
            await conn.execute(console_audit.insert().values(values))

    async def audit_log(self, limit: int = 200, target: str | None = None) -> list[AuditEntry]:
        """Newest first; ``target`` narrows to one thing (``incident:7``)."""
        query = sa.select(console_audit).order_by(console_audit.c.id.desc()).limit(limit)
        if target is not None:
            query = query.where(console_audit.c.target == target)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            AuditEntry(r["at"], r["actor"], r["action"], r["target"], r["detail"], r["via"])
            for r in rows
        ]

    # the console's reads ------------------------------------------------------

    async def incidents(self, limit: int = 100) -> list[tuple[Incident, datetime | None]]:
        """Incidents newest first, open ones before lifted, with when each was lifted."""
        query = (
            sa.select(incidents)
            .order_by((incidents.c.status == "open").desc(), incidents.c.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [(incident_of(r), r["lifted_at"]) for r in rows]

    async def lifted_at(self, incident_id: int) -> datetime | None:
        query = sa.select(incidents.c.lifted_at).where(incidents.c.id == incident_id)
        async with self.engine.connect() as conn:
            value: datetime | None = (await conn.execute(query)).scalar_one_or_none()
            return value

    async def acks_of(self, incident_id: int) -> list[AckRow]:
        query = (
            sa.select(acks)
            .join(requests, requests.c.id == acks.c.request_id)
            .where(requests.c.incident_id == incident_id)
            .order_by(acks.c.received_at)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            AckRow(r["request_id"], r["path"], r["text"], r["late"], r["received_at"]) for r in rows
        ]

    async def messages_of(self, incident_id: int) -> list[MessageRow]:
        query = sa.select(outbox).where(outbox.c.incident_id == incident_id).order_by(outbox.c.id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            MessageRow(
                r["key"],
                r["channel"],
                r["status"],
                r["responder_key"],
                r["created_at"],
                r["sent_at"],
                r["provider_status"],
            )
            for r in rows
        ]

    async def escalations_of(self, incident_id: int) -> list[tuple[str, str, datetime]]:
        """(key, kind, fired_at) of the ladder steps fired for an incident, oldest first."""
        query = (
            sa.select(escalations.c.key, escalations.c.kind, escalations.c.fired_at)
            .where(escalations.c.incident_id == incident_id)
            .order_by(escalations.c.fired_at)
        )
        async with self.engine.connect() as conn:
            return [(k, kind, at) for k, kind, at in (await conn.execute(query)).all()]

    async def failed_addresses_of(self, keys: Iterable[str]) -> dict[str, set[str]]:
        """Each person's addresses that failed for good, for many persons at once."""
        wanted = list(set(keys))
        query = sa.select(address_failures.c.responder_key, address_failures.c.address).where(
            address_failures.c.responder_key.in_(wanted)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found: dict[str, set[str]] = {}
        for key, address in rows:
            found.setdefault(key, set()).add(address)
        return found


def _account(r: Any) -> Account:
    return Account(
        id=r["id"],
        name=r["name"],
        role=r["role"],
        password_hash=r["password_hash"],
        failures=r["failures"],
        locked_until=r["locked_until"],
        active=r["active"],
    )
