"""Channels: one small protocol, one file per provider, one registry.

A channel hands one message to its provider and returns a ``Receipt``, or
raises ``SendError`` saying whether a retry can help (Alertmanager's
``Notifier`` contract). Adding a provider is one file, one settings model and
one line in ``CHANNELS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from warnbot.model import Message, Receipt
from warnbot.settings import Settings


class Channel(Protocol):
    """What the dispatcher needs of a provider."""

    name: str

    async def send(self, message: Message) -> Receipt:
        """Hand ``message`` to the provider; raise SendError on failure."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def _console(settings: Settings) -> Channel:
    from warnbot.channels.console import ConsoleChannel

    return ConsoleChannel()


def _twilio(settings: Settings) -> Channel:
    from warnbot.channels.twilio_sms import TwilioSms

    return TwilioSms(settings.twilio)


def _cap(settings: Settings) -> Channel:
    from warnbot.channels.cap_push import CapPush

    return CapPush(settings.downstream)


CHANNELS: dict[str, Callable[[Settings], Channel]] = {
    "console": _console,
    "twilio": _twilio,
    "cap": _cap,
}
