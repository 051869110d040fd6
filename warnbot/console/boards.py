"""Live boards shared by every stream watching them: one render per board change.

A duty room may have twenty screens on the same incident. Each distinct board
(incident, filter, language, whether the viewer may act) has one refresher task:
it renders when the hub reports something (an answer, an escalation, a lift) or
every ``poll_s`` (another process may have recorded an answer, and time turns
pending into silent), and hands the HTML to every stream that watches it. The
refresher lives while someone watches and stops with the last of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from warnbot import log
from warnbot.console.live import Hub

_log = log.get(__name__)


class BoardKey(NamedTuple):
    incident_id: int
    only: str | None  # the state filter, or everyone
    language: str
    can_act: bool  # duty officer or administrator: the board carries its buttons


Render = Callable[[BoardKey], Awaitable[str]]


@dataclass
class _Shared:
    html: str = ""
    version: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    watchers: int = 0
    task: asyncio.Task[None] | None = None


class Boards:
    """The shared boards; ``renders`` counts renders, for tests and curiosity."""

    def __init__(self, hub: Hub, render: Render, poll_s: float) -> None:
        self.hub, self.render, self.poll_s = hub, render, poll_s
        self.renders = 0
        self._shared: dict[BoardKey, _Shared] = {}

    async def watch(self, key: BoardKey, keepalive_s: float) -> AsyncGenerator[str | None]:
        """The board's HTML now and after each change; None after ``keepalive_s`` of
        quiet (a stream writes a keep-alive then). Close it (``aclosing``) when done."""
        shared = self._join(key)
        seen = 0
        try:
            while not self.hub.closed:
                if shared.version > seen:
                    seen = shared.version
                    yield shared.html
                    continue
                try:
                    await asyncio.wait_for(shared.changed.wait(), keepalive_s)
                except TimeoutError:
                    yield None
        finally:
            self._leave(key, shared)

    def _join(self, key: BoardKey) -> _Shared:
        shared = self._shared.get(key)
        if shared is None:
            shared = self._shared[key] = _Shared()
            shared.task = asyncio.create_task(self._refresh(key, shared))
        shared.watchers += 1
        return shared

    def _leave(self, key: BoardKey, shared: _Shared) -> None:
        shared.watchers -= 1
        if shared.watchers == 0 and self._shared.get(key) is shared:
            del self._shared[key]
            if shared.task is not None:
                shared.task.cancel()

    async def _refresh(self, key: BoardKey, shared: _Shared) -> None:
        try:
            while not self.hub.closed:
                await self._render_once(key, shared)
                await self.hub.wait(self.poll_s)
        finally:
            shared.changed.set()  # let the watchers see the hub closed

    async def _render_once(self, key: BoardKey, shared: _Shared) -> None:
        try:
            html = await self.render(key)
        except Exception:  # a store outage: keep the last board, try again at the next poll
            _log.exception("board_render_failed", incident=key.incident_id)
            return
        self.renders += 1
        if html != shared.html:
            shared.html, shared.version = html, shared.version + 1
            shared.changed.set()
            shared.changed = asyncio.Event()

    async def close(self) -> None:
        """Stop every refresher (at shutdown, after the hub closed)."""
        tasks = [s.task for s in self._shared.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
