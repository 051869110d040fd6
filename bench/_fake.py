"""The fake Twilio in a process of its own, so it does not share a core with the
code under measurement."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection

from warnbot.fakes.twilio import FakeTwilio

ACCOUNT = "AC" + "b" * 32
TOKEN = "bench-token-not-a-secret"


def _quiet_gc() -> None:
    """Keep the loaded OpenAPI description (millions of objects) out of the garbage
    collector's full passes: each would stall the fake for tens of milliseconds and
    bunch the requests arriving meanwhile, which is the fake's jitter, not the sender's."""
    gc.collect()
    gc.freeze()


def _serve(conn: Connection) -> None:
    async def run() -> None:
        async with FakeTwilio(ACCOUNT, TOKEN, validate=False, keep=False) as fake:
            _quiet_gc()
            conn.send(fake.base_url)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)
            conn.send(fake.accepted)

    asyncio.run(run())


@contextlib.contextmanager
def fake_twilio() -> Iterator[str]:
    """Yields the fake's base URL; stops the process afterwards."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve, args=(child,), daemon=True)
    process.start()
    try:
        yield parent.recv()
    finally:
        parent.send("stop")
        parent.recv()
        process.join(10)


def _serve_stamps(conn: Connection) -> None:
    async def run() -> None:
        async with FakeTwilio(ACCOUNT, TOKEN, validate=False) as fake:
            _quiet_gc()
            conn.send(fake.base_url)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)
            conn.send([m.created.timestamp() for m in fake.messages])

    asyncio.run(run())


@contextlib.contextmanager
def fake_twilio_stamps() -> Iterator[tuple[str, Callable[[], list[float]]]]:
    """Yields the fake's base URL and a function returning each message's arrival time
    (call it once, at the end: it stops the fake)."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve_stamps, args=(child,), daemon=True)
    process.start()

    def stamps() -> list[float]:
        parent.send("stop")
        result: list[float] = parent.recv()
        return result

    try:
        yield parent.recv(), stamps
    finally:
        process.join(10)
