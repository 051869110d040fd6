"""Real ``warnbot run`` processes for the crash, fault and scale-out tests.

Each daemon is ``python -m warnbot --config config/demo/warnbot.toml run`` with
environment overrides: its own port, the shared database, Twilio pointed at a
fake on 127.0.0.1 in the test process, a short scheduler lease. Its log goes
to a file (a pipe nobody reads would fill and stall it).
"""

from __future__ import annotations

import asyncio
import collections
import multiprocessing
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import sqlalchemy as sa
from aiohttp import web

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, DEMO, PG_DSN, ROOT, sign
from warnbot.fakes.twilio import FakeMessage, FakeTwilio, matches, page_json
from warnbot.model import Message
from warnbot.store import Store
from warnbot.store.tables import outbox

LEASE_S = 3.0


class CountingTwilio(FakeTwilio):
    """The fake Twilio with its message list indexed by number, so reconciling
    (which lists the messages to one number) stays cheap with 50,000 kept."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(ACCOUNT_SID, AUTH_TOKEN, validate=False, **kwargs)
        self.by_to: dict[str, list[FakeMessage]] = collections.defaultdict(list)

    def _after_message(self, message: FakeMessage) -> None:
        self.by_to[message.to].append(message)
        super()._after_message(message)

    async def _list_messages(self, request: web.Request) -> web.StreamResponse:
        mine = self.by_to.get(request.query.get("To", ""), [])
        chosen = [m for m in reversed(mine) if matches(m, request.query)]
        return web.json_response(page_json(request, chosen))

    def doubled(self) -> list[tuple[str, str | None]]:
        """Every (number, text) the fake took more than once."""
        seen = collections.Counter((m.to, m.body) for m in self.messages)
        return [k for k, n in seen.items() if n > 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Daemon:
    """One ``warnbot run`` process."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    env: dict[str, str] = field(repr=False)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, connections dropped by the kernel."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout_s: float = 30) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)

    async def readyz(self, session: aiohttp.ClientSession) -> tuple[int, dict[str, Any]]:
        """(status, body) of /readyz; (0, {}) when nothing answers."""
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with session.get(f"{self.base}/readyz", timeout=timeout) as r:
                return r.status, await r.json()
        except (aiohttp.ClientError, TimeoutError):
            return 0, {}

    async def sms_reply(self, session: aiohttp.ClientSession, phone: str, text: str) -> int:
        """POST a signed Twilio inbound SMS; the HTTP status (0: no answer)."""
        url = f"{self.base}/hooks/twilio/sms"
        form = {"From": phone, "Body": text, "MessageSid": "SM" + secrets.token_hex(16)}
        try:
            async with session.post(url, data=form, headers=sign(url, form)) as r:
                await r.read()
                return r.status
        except aiohttp.ClientError:
            return 0


def start(db_url: str, twilio_url: str, workdir: Path, name: str, **extra: str) -> Daemon:
    """Start one daemon on the demo configuration, sending to ``twilio_url``."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WARNBOT_DATABASE_URL": db_url,
        "WARNBOT_WEB__PORT": str(port),
        "WARNBOT_WEB__PUBLIC_URL": f"http://127.0.0.1:{port}",
        "WARNBOT_TWILIO__API_BASE_URL": twilio_url,
        "WARNBOT_TWILIO__AUTH_TOKEN": AUTH_TOKEN,
        "WARNBOT_TWILIO__STATUS_CALLBACKS": "false",
        "WARNBOT_LEASE_S": str(LEASE_S),
        "WARNBOT_LOG_FORMAT": "json",
        **extra,
    }
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "warnbot", "--config", str(DEMO / "warnbot.toml"), "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Daemon(proc, port, log, env)


async def wait_ready(daemons: list[Daemon], timeout_s: float = 60) -> None:
    """Until every daemon answers /readyz with 200."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        for d in daemons:
            while (await d.readyz(session))[0] != 200:
                assert d.alive(), d.log.read_text("utf-8")[-3000:]
                assert time.monotonic() < deadline, d.log.read_text("utf-8")[-3000:]
                await asyncio.sleep(0.2)


async def leaders(daemons: list[Daemon]) -> list[Daemon]:
    """The live daemons that say they hold the scheduler lease."""
    async with aiohttp.ClientSession() as session:
        held = []
        for d in daemons:
            if d.alive() and (await d.readyz(session))[1].get("lease") == "held":
                held.append(d)
        return held


async def scratch_pg() -> tuple[str, str]:
    """A new empty PostgreSQL database: (SQLAlchemy URL, name)."""
    name = f"warnbot_proc_{os.getpid()}_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}", name


async def drop_pg(name: str) -> None:
    conn = await asyncpg.connect(PG_DSN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def blast(store: Store, n: int, now: Any, tag: str = "blast") -> list[Message]:
    """Enqueue ``n`` public tip SMS (lane 1), each to its own invented number."""
    body = "【示例县防汛办】台风“示例”今夜登陆，请远离海边、加固门窗。"
    messages = [
        Message(f"{tag}:{i}", "twilio", f"+86139{i:08d}", body, None, None, priority=1)
        for i in range(n)
    ]
    for i in range(0, n, 10_000):
        await store.enqueue(messages[i : i + 10_000], now)
    return messages


async def outbox_status(store: Store) -> dict[str, int]:
    return await store.outbox_counts()


async def wait_sent(store: Store, timeout_s: float) -> dict[str, int]:
    """Until nothing is queued or sending; the final counts."""
    deadline = time.monotonic() + timeout_s
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = await store.outbox_counts()
        if not counts.get("queued") and not counts.get("sending"):
            return counts
        await asyncio.sleep(0.5)
    raise AssertionError(f"outbox not drained in {timeout_s} s: {counts}")


async def lapse_orphaned_claims(store: Store, settle_s: float = 5.0) -> int:
    """Make the claims a killed process left behind lapse now instead of after the
    dispatcher's 60 s claim lease (as if that minute had passed).

    Waits until nothing is queued and the set of ``sending`` rows stays the same
    for ``settle_s``: live processes finish a send in milliseconds (seconds on a
    loaded machine), so what is left is the dead one's. Returns how many rows were lapsed.
    """
    sending = sa.select(outbox.c.id).where(outbox.c.status == "sending")
    before: set[int] = set()
    while True:
        counts = await store.outbox_counts()
        async with store.engine.connect() as conn:
            now_sending = set((await conn.execute(sending)).scalars())
        if not counts.get("queued") and now_sending == before:
            break
        before = now_sending
        await asyncio.sleep(settle_s)
    if before:
        lapsed = datetime.now(UTC) - timedelta(seconds=1)
        async with store.engine.begin() as conn:
            stmt = outbox.update().where(outbox.c.id.in_(before)).values(claimed_until=lapsed)
            await conn.execute(stmt)
    return len(before)


def _serve_fake(conn: Connection) -> None:
    """The child side of :class:`FakeProcess`: answer commands until ``stop``."""

    async def run() -> None:
        async with CountingTwilio() as fake:
            conn.send(fake.base_url)
            loop = asyncio.get_running_loop()
            while (command := await loop.run_in_executor(None, conn.recv)) != "stop":
                if command == "accepted":
                    conn.send(fake.accepted)
                elif command == "held":
                    conn.send(fake.held)
                elif command in ("hold", "release"):
                    (fake.hold_answers if command == "hold" else fake.release_answers)()
                    conn.send(None)
                else:
                    conn.send([(m.to, m.body) for m in fake.messages])

    asyncio.run(run())


class FakeProcess:
    """A :class:`CountingTwilio` in a process of its own, so a 50,000-message blast
    is not slowed by sharing the test's event loop."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve_fake, args=(child,), daemon=True)
        self.process.start()
        self.base_url: str = self.conn.recv()

    def _ask(self, command: str) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    async def accepted(self) -> int:
        return int(await asyncio.to_thread(self._ask, "accepted"))

    async def held(self) -> int:
        """How many messages were taken with their answer held back."""
        return int(await asyncio.to_thread(self._ask, "held"))

    async def hold(self) -> None:
        """Take messages but answer none until :meth:`release`."""
        await asyncio.to_thread(self._ask, "hold")

    async def release(self) -> None:
        await asyncio.to_thread(self._ask, "release")

    async def sent(self) -> list[tuple[str, str]]:
        """Every (number, text) the fake took, in order."""
        return list(await asyncio.to_thread(self._ask, "messages"))

    def close(self) -> None:
        self.conn.send("stop")
        self.process.join(10)
