"""Wake-ups for the live ack board: whatever ``App.observe`` reports (an answer, a
new request, an escalation, a lift) wakes every open board stream at once; a
stream also looks again every ``board_poll_s``, since another process sharing
the database may have recorded the answer."""

from __future__ import annotations

import asyncio
from typing import Any

BOARD_EVENTS = frozenset(
    {"opened", "requested", "confirmed", "escalated", "unreachable", "lifted", "upgrade"}
)


class Hub:
    """One event per waiting stream; ``close`` releases them all at shutdown."""

    def __init__(self) -> None:
        self.waiting: set[asyncio.Event] = set()
        self.closed = False

    def observe(self, event: str, fields: dict[str, Any]) -> None:
        if event in BOARD_EVENTS:
            self.wake()

    def wake(self) -> None:
        for e in self.waiting:
            e.set()

    async def wait(self, timeout_s: float) -> None:
        """Until something happens, ``timeout_s`` passes, or the hub closes."""
        if self.closed:
            return
        event = asyncio.Event()
        self.waiting.add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            pass
        finally:
            self.waiting.discard(event)

    def close(self) -> None:
        self.closed = True
        self.wake()
