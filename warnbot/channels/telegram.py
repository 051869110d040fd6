"""Telegram Bot API: one message per chat, with an inline "确认收到" button.

The button's ``callback_data`` is ``ack:<token>``, the signed token of the
request the message asks about, so pressing it reaches ``POST /hooks/telegram``
(:mod:`warnbot.web.telegram_hooks`), which confirms exactly that request.
Telegram allows 1–64 bytes of callback data; a token is at most 26 ASCII
characters (:mod:`warnbot.links`), so ``ack:`` + token always fits. Should a
token ever not fit, the message still goes, without the button: the warning
matters more than the way to answer it, and the body carries the SMS reply
code and link.

Every Bot API answer is ``{"ok": true, "result": …}`` or ``{"ok": false,
"error_code", "description", "parameters"}``. 429 (flood control, with
``parameters.retry_after`` seconds), 5xx, anything that is not a Bot API answer,
timeouts and refused connections are transient; any other 4xx is permanent:
400 chat not found or a bad request, 401 a wrong bot token, 403 the bot was
blocked or removed from the group, 404 no such method.

``api_base_url`` replaces ``https://api.telegram.org`` so a proxy (where the Bot
API is not reachable directly) or the local fake (:mod:`warnbot.fakes.telegram`)
can stand in. The bot token is part of every URL, so no URL is ever logged or
put in an error.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from warnbot import log
from warnbot.errors import ConfigError, SendError
from warnbot.model import Message, Receipt
from warnbot.settings import Settings

_log = log.get(__name__)

ACK_PREFIX = "ack:"
CALLBACK_DATA_MAX_BYTES = 64
BUTTON_TEXT = "确认收到 Confirm"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# What Telegram accepts as a webhook secret_token (setWebhook): 1–256 of these.
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class TelegramSettings(BaseModel):
    """``[channels.telegram]``; the two secrets come from the environment:
    ``WARNBOT_CHANNELS__TELEGRAM__BOT_TOKEN`` and ``…__WEBHOOK_SECRET``."""

    model_config = ConfigDict(extra="forbid")

    bot_token: SecretStr | None = None
    api_base_url: str = "https://api.telegram.org"
    # Given to setWebhook as secret_token; Telegram sends it back in SECRET_HEADER.
    webhook_secret: SecretStr | None = None
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("api_base_url")
    @classmethod
    def _no_trailing_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_accepts(cls, v: SecretStr | None) -> SecretStr | None:
        """Refuse at start a secret that setWebhook would refuse later."""
        if v is not None and not _WEBHOOK_SECRET.fullmatch(v.get_secret_value()):
            raise ValueError("Telegram accepts 1-256 characters of A-Z a-z 0-9 _ -")
        return v


class TelegramBot:
    """Sends with ``sendMessage`` and answers button presses with ``answerCallbackQuery``."""

    name = "telegram"

    def __init__(self, settings: TelegramSettings) -> None:
        if settings.bot_token is None:
            raise ConfigError(
                ["channels.telegram.bot_token: not set (WARNBOT_CHANNELS__TELEGRAM__BOT_TOKEN)"]
            )
        self.settings = settings
        self._token = settings.bot_token.get_secret_value()
        self.session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramBot:
        """The bot ``[channels.telegram]`` describes; ConfigError names each bad key."""
        try:
            return cls(TelegramSettings.model_validate(settings.channels.get("telegram", {})))
        except ValidationError as e:
            raise ConfigError(
                [
                    f"channels.telegram.{'.'.join(map(str, err['loc']))}: {err['msg']}"
                    for err in e.errors()
                ]
            ) from None

    async def send(self, message: Message) -> Receipt:
        payload: dict[str, Any] = {"chat_id": message.to, "text": message.body}
        markup = ack_keyboard(message.ack_token) if message.ack_token else None
        if markup is not None:
            payload["reply_markup"] = markup
        elif message.ack_token:
            _log.warning("telegram_button_dropped", message=message.key)
        result = await self.call("sendMessage", payload)
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return Receipt(provider_id=f"{message.to}:{message_id}")

    async def answer_callback(self, callback_query_id: str, text: str) -> None:
        """Stop the spinner on the pressed button and show ``text`` to the presser."""
        payload = {"callback_query_id": callback_query_id, "text": text}
        await self.call("answerCallbackQuery", payload)

    def accepts(self, secret: str | None) -> bool:
        """True when a webhook request carries the configured secret; never without one."""
        expected = self.settings.webhook_secret
        if expected is None or secret is None:
            return False
        return hmac.compare_digest(secret.encode(), expected.get_secret_value().encode())

    async def call(self, method: str, payload: dict[str, Any]) -> Any:
        """One Bot API call; its ``result``, or SendError saying whether a retry can help."""
        try:
            status, body = await self._post(method, payload)
        except (aiohttp.ClientError, TimeoutError) as e:
            # The URL holds the bot token: name the error's type, never its text.
            raise SendError(f"Telegram unreachable: {type(e).__name__}", retryable=True) from None
        if isinstance(body, dict) and body.get("ok") is True:
            return body.get("result")
        raise classify(method, status, body)

    async def _post(self, method: str, payload: dict[str, Any]) -> tuple[int, Any]:
        url = f"{self.settings.api_base_url}/bot{self._token}/{method}"
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        async with self._session().post(url, json=payload, timeout=timeout) as resp:
            try:
                return resp.status, await resp.json(content_type=None)
            except ValueError:  # a proxy's HTML error page, say
                return resp.status, None

    def _session(self) -> aiohttp.ClientSession:
        """One session for the channel's life, made inside the running loop."""
        if self.session is None:
            self.session = aiohttp.ClientSession()
        return self.session

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()


def ack_keyboard(token: str) -> dict[str, Any] | None:
    """The one-button inline keyboard for ``token``; None when it cannot fit."""
    data = ACK_PREFIX + token
    if len(data.encode()) > CALLBACK_DATA_MAX_BYTES:
        return None
    return {"inline_keyboard": [[{"text": BUTTON_TEXT, "callback_data": data}]]}


def ack_token_of(callback_data: object) -> str | None:
    """The token a pressed button carries, or None when it is not an ack button."""
    if isinstance(callback_data, str) and callback_data.startswith(ACK_PREFIX):
        return callback_data.removeprefix(ACK_PREFIX)
    return None


def classify(method: str, status: int, body: object) -> SendError:
    """4xx is permanent except 429; 429, 5xx and non-answers are transient."""
    fields: dict[str, Any] = body if isinstance(body, dict) else {}
    code = fields.get("error_code")
    code = code if isinstance(code, int) else status
    reason = f"Telegram {method} {code}: {fields.get('description') or f'HTTP {status}'}"
    parameters = fields.get("parameters")
    if isinstance(parameters, dict):
        reason += _hints(parameters)
    retryable = code == 429 or not 400 <= code < 500
    wait = parameters.get("retry_after") if isinstance(parameters, dict) else None
    wait_s = float(wait) if isinstance(wait, int | float) and not isinstance(wait, bool) else None
    return SendError(reason, retryable=retryable, code=str(code), retry_after_s=wait_s)


def _hints(parameters: dict[str, Any]) -> str:
    """What Telegram's ResponseParameters tell an operator."""
    hints = ""
    if "retry_after" in parameters:
        hints += f" (retry after {parameters['retry_after']} s)"
    if "migrate_to_chat_id" in parameters:
        hints += f" (the group moved to chat {parameters['migrate_to_chat_id']})"
    return hints
