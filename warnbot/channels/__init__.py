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

    callback = f"{settings.web.public_url}/hooks/twilio/status"
    return TwilioSms(settings.twilio, callback if settings.twilio.status_callbacks else None)


def _voice(settings: Settings) -> Channel:
    from warnbot.channels.twilio_voice import TwilioVoice

    return TwilioVoice(settings.twilio, settings.web.public_url)


def _cap(settings: Settings) -> Channel:
    from warnbot.channels.cap_push import CapPush

    return CapPush(settings.downstream)


def _telegram(settings: Settings) -> Channel:
    from warnbot.channels.telegram import TelegramBot

    return TelegramBot.from_settings(settings)


def _email(settings: Settings) -> Channel:
    from warnbot.channels.email import SmtpEmail

    return SmtpEmail.from_settings(settings)


def _aliyun(settings: Settings) -> Channel:
    from warnbot.channels.aliyun_sms import AliyunSms

    return AliyunSms.from_settings(settings)


def _wecom(settings: Settings) -> Channel:
    from warnbot.channels.wecom import WeComBot

    return WeComBot.from_settings(settings)


def _dingtalk(settings: Settings) -> Channel:
    from warnbot.channels.dingtalk import DingTalkBot

    return DingTalkBot.from_settings(settings)


def _feishu(settings: Settings) -> Channel:
    from warnbot.channels.feishu import FeishuBot

    return FeishuBot.from_settings(settings)


def _slack(settings: Settings) -> Channel:
    from warnbot.channels.slack import SlackWebhook

    return SlackWebhook.from_settings(settings)


def _webhook(settings: Settings) -> Channel:
    from warnbot.channels.webhook import JsonWebhook

    return JsonWebhook.from_settings(settings)


CHANNELS: dict[str, Callable[[Settings], Channel]] = {
    "console": _console,
    "twilio": _twilio,
    "cap": _cap,
    "voice": _voice,
    "wecom": _wecom,
    "dingtalk": _dingtalk,
    "feishu": _feishu,
    "slack": _slack,
    "webhook": _webhook,
    "telegram": _telegram,
    "email": _email,
    "aliyun": _aliyun,
}
