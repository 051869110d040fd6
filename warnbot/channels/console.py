"""Console channel: prints messages instead of sending them (trials, dry runs)."""

from __future__ import annotations

import itertools
import sys
from typing import TextIO

from warnbot.log import mask_phone
from warnbot.model import Message, Receipt


class ConsoleChannel:
    """Writes each message as one line to a stream; never fails."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._ids = itertools.count(1)

    async def send(self, message: Message) -> Receipt:
        print(f"[短信 SMS → {mask_phone(message.to)}] {message.body}", file=self.stream)
        return Receipt(provider_id=f"console-{next(self._ids)}")

    async def aclose(self) -> None:
        return None
