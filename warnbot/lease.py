"""The scheduler lease: of all the ``warnbot run`` processes sharing one database,
exactly one runs the pollers, the escalation clock, expiry and the feed watch.

On PostgreSQL the lease is a session advisory lock (``pg_try_advisory_lock``)
taken on a connection of its own and held for the life of the lease: when the
holder dies, its connection drops and the server frees the lock at once. The
holder pings that connection every ``lease_s / 3``; a ping that fails means the
lease is lost and the holder stops its jobs. The session's
``idle_session_timeout`` (``lease_s × 2/3``) makes the server free the lock of a
holder that is cut off but not dead, so another process takes over within
``lease_s``.

On SQLite (one machine) the lease is an exclusive ``flock`` on a file beside
the database: the kernel frees it when the holder dies. An in-memory database
belongs to one process, which always holds the lease.

No queue or cluster protocol of our own: what the lease guards is already
idempotent (escalation steps and outbox keys are unique), so a short overlap
while a cut-off holder notices can send nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from warnbot import log

_log = log.get(__name__)
# pg advisory lock key: the first 8 bytes of sha256("warnbot:scheduler"), as a signed int64
LOCK_KEY = int.from_bytes(bytes.fromhex("5c1ef2b8a4d07e31"), "big", signed=True)
STARTUP_KEY = LOCK_KEY + 1  # held while a process migrates and loads the roster


class Lease(Protocol):
    """One process's hold on the scheduler lease."""

    async def acquire(self) -> bool:
        """Try once, without waiting; True when this process now holds the lease."""
        ...

    async def check(self) -> bool:
        """True while the lease is still held (it may be lost behind our back)."""
        ...

    async def release(self) -> None: ...


class PgLease:
    """A PostgreSQL session advisory lock on a dedicated connection."""

    def __init__(self, url: str, lease_s: float = 15.0) -> None:
        self.engine: AsyncEngine = create_async_engine(url, poolclass=NullPool)
        self.lease_s = lease_s
        self.conn: AsyncConnection | None = None

    async def acquire(self) -> bool:
        if self.conn is not None:
            return await self.check()
        timeout_s = self.lease_s / 3
        conn = await asyncio.wait_for(self.engine.connect(), timeout_s)
        try:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            idle_ms = int(self.lease_s * 2000 / 3)
            await conn.execute(sa.text(f"SET idle_session_timeout = {idle_ms}"))
            query = sa.text("SELECT pg_try_advisory_lock(:key)").bindparams(key=LOCK_KEY)
            got = bool((await asyncio.wait_for(conn.execute(query), timeout_s)).scalar())
        except BaseException:
            await _drop(conn)
            raise
        if got:
            self.conn = conn
        else:
            await conn.close()
        return got

    async def check(self) -> bool:
        if self.conn is None:
            return False
        try:
            await asyncio.wait_for(self.conn.execute(sa.text("SELECT 1")), self.lease_s / 3)
        except Exception as e:  # the connection dropped: the server has freed the lock
            _log.warning("lease_lost", error=type(e).__name__)
            conn, self.conn = self.conn, None
            await _drop(conn)
            return False
        return True

    async def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                query = sa.text("SELECT pg_advisory_unlock(:key)").bindparams(key=LOCK_KEY)
                await asyncio.wait_for(conn.execute(query), self.lease_s / 3)
            await _drop(conn)
        await self.engine.dispose()


async def _drop(conn: AsyncConnection) -> None:
    """Close a connection that may be broken, without waiting on a dead socket."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(conn.close(), 2.0)


class FileLease:
    """An exclusive ``flock`` on ``path``; the kernel releases it when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[bytes] | None = None

    async def acquire(self) -> bool:
        if self.file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("ab")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        f.truncate(0)
        f.write(f"{os.getpid()}\n".encode())
        f.flush()
        self.file = f
        return True

    async def check(self) -> bool:
        return self.file is not None

    async def release(self) -> None:
        f, self.file = self.file, None
        if f is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            f.close()


class SoleLease:
    """An in-memory database has one process: it always holds the lease."""

    async def acquire(self) -> bool:
        return True

    async def check(self) -> bool:
        return True

    async def release(self) -> None:
        return None


def for_database(url: str, lease_s: float = 15.0) -> Lease:
    """The lease that fits the database at ``url``."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PgLease(url, lease_s)
    if not parsed.database or parsed.database == ":memory:":
        return SoleLease()
    return FileLease(Path(parsed.database).with_suffix(".lease"))


@contextlib.asynccontextmanager
async def starting(url: str, timeout_s: float = 120.0) -> AsyncIterator[None]:
    """One process at a time through start-up (migrations, roster sync): processes
    started together on one database would otherwise race to create the same rows."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        yield  # SQLite serialises writers itself
        return
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            lock = sa.text("SELECT pg_advisory_lock(:key)").bindparams(key=STARTUP_KEY)
            await asyncio.wait_for(conn.execute(lock), timeout_s)
            try:
                yield
            finally:
                unlock = sa.text("SELECT pg_advisory_unlock(:key)").bindparams(key=STARTUP_KEY)
                await conn.execute(unlock)
    finally:
        await engine.dispose()


@dataclass
class Holder:
    """Keeps trying for the lease and follows it: ``on_gain`` when it is taken,
    ``on_loss`` when it is lost or given up. ``held`` says which, for /readyz."""

    lease: Lease
    on_gain: Callable[[], Awaitable[None]]
    on_loss: Callable[[], Awaitable[None]]
    interval_s: float = 5.0
    held: bool = False
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.held:
            self.held = False
            await self.on_loss()
        await self.lease.release()

    async def step(self) -> None:
        """One turn: take the lease if free, or make sure it is still ours."""
        try:
            now_held = await (self.lease.check() if self.held else self.lease.acquire())
        except Exception as e:  # the database is unreachable: we cannot hold it
            _log.warning("lease_unavailable", error=f"{type(e).__name__}: {e}"[:200])
            now_held = False
        if now_held and not self.held:
            self.held = True
            _log.info("lease_taken", pid=os.getpid())
            await self.on_gain()
        elif self.held and not now_held:
            self.held = False
            _log.warning("lease_given_up", pid=os.getpid())
            await self.on_loss()

    async def _run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(self.interval_s)
