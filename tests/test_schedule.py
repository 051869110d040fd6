"""Stopping the scheduler is bounded: runs in flight may finish, stuck ones are cancelled."""

from __future__ import annotations

import asyncio

from warnbot.schedule import finish


async def test_a_run_that_ends_within_the_grace_time_finishes_untouched() -> None:
    done = asyncio.Event()

    async def short() -> str:
        await asyncio.sleep(0.05)
        done.set()
        return "committed"

    task = asyncio.create_task(short())
    await finish({task}, timeout_s=2.0)
    assert done.is_set() and task.result() == "committed"


async def test_a_run_stuck_past_the_grace_time_is_cancelled_so_stop_returns() -> None:
    async def stuck() -> None:
        await asyncio.Event().wait()  # a connection that never answers

    task = asyncio.create_task(stuck())
    loop = asyncio.get_running_loop()
    started = loop.time()
    await finish({task}, timeout_s=0.2)
    assert task.cancelled()
    assert loop.time() - started < 1.0
