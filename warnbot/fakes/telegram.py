"""A local stand-in for the Telegram Bot API, for the tests and the demo.

It serves ``POST /bot<token>/sendMessage`` and ``/bot<token>/answerCallbackQuery``
on 127.0.0.1 and answers as the Bot API does: ``{"ok": true, "result": …}``, or
``{"ok": false, "error_code", "description"}`` for a wrong token (401), an
unknown method (404), a request Telegram would refuse (400) and any failure
injected with :meth:`FakeTelegram.fail_next`. It keeps what it was sent, and
:meth:`FakeTelegram.press` plays a person pressing an inline button: it POSTs
the ``callback_query`` update to a webhook with the secret header, as Telegram
does, and afterwards accepts exactly one answer to that query.

Usage::

    async with FakeTelegram(bot_token) as fake:
        settings.api_base_url = fake.base_url
        ...
        await fake.press(webhook_url, secret, fake.messages[0])
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TEXT_MAX_CHARS = 4096  # sendMessage text, after entity parsing
ANSWER_MAX_CHARS = 200  # answerCallbackQuery text
CALLBACK_DATA_MAX_BYTES = 64


@dataclass
class SentMessage:
    """One message the bot sent, as the fake stored it."""

    message_id: int
    chat_id: int | str
    text: str
    reply_markup: dict[str, Any] | None = None
    date: int = field(default_factory=lambda: int(time.time()))

    def buttons(self) -> list[dict[str, Any]]:
        """The inline buttons, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]

    def json(self) -> dict[str, Any]:
        """The Bot API ``Message`` object."""
        chat_type = "private" if isinstance(self.chat_id, int) and self.chat_id > 0 else "group"
        out: dict[str, Any] = {
            "message_id": self.message_id,
            "date": self.date,
            "chat": {"id": self.chat_id, "type": chat_type},
            "text": self.text,
        }
        if self.reply_markup is not None:
            out["reply_markup"] = self.reply_markup
        return out


@dataclass(frozen=True)
class CallbackAnswer:
    """One ``answerCallbackQuery`` the bot made."""

    callback_query_id: str
    text: str
    show_alert: bool = False


@dataclass(frozen=True)
class Failure:
    """An error the fake answers with instead of doing the call."""

    error_code: int
    description: str
    retry_after: int | None = None

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.error_code)


def bad_request(description: str) -> web.Response:
    return Failure(400, f"Bad Request: {description}").response()


def ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


class FakeTelegram:
    """The Bot API for one bot, on ``host``:``port`` (0: any free port)."""

    def __init__(self, bot_token: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.bot_token = bot_token
        self.host, self.port, self.base_url = host, port, ""
        self.messages: list[SentMessage] = []
        self.answers: list[CallbackAnswer] = []
        self._queries: dict[str, SentMessage] = {}  # pressed and not yet answered
        self._failures: deque[Failure] = deque()
        self._message_ids = itertools.count(1)
        self._update_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._call)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://{self.host}:{self.port}"
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def fail_next(
        self, error_code: int, description: str, *, retry_after: int | None = None, count: int = 1
    ) -> None:
        """Answer the next ``count`` authorized calls (any method) with this error.

        Telegram's own: ``429, "Too Many Requests: retry after 5", retry_after=5``;
        ``403, "Forbidden: bot was blocked by the user"``;
        ``400, "Bad Request: chat not found"``.
        """
        self._failures.extend([Failure(error_code, description, retry_after)] * count)

    async def press(
        self, webhook_url: str, secret: str | None, message: SentMessage, button: int = 0
    ) -> int:
        """Press a button of ``message`` as its chat's person; the webhook's HTTP status."""
        query_id = str(secrets.randbits(63))
        self._queries[query_id] = message
        query = {
            "id": query_id,
            "from": {"id": _user_id(message.chat_id), "is_bot": False, "first_name": "测试"},
            "message": message.json(),
            "chat_instance": str(secrets.randbits(63)),
            "data": message.buttons()[button]["callback_data"],
        }
        return await self.post_update(webhook_url, secret, {"callback_query": query})

    async def post_update(
        self, webhook_url: str, secret: str | None, update: dict[str, Any]
    ) -> int:
        """POST one update (``update_id`` added) as Telegram does; the webhook's HTTP status."""
        assert self._session is not None, "start() first"
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        body = {"update_id": next(self._update_ids), **update}
        async with self._session.post(webhook_url, json=body, headers=headers) as response:
            await response.read()
            return response.status

    async def _call(self, request: web.Request) -> web.StreamResponse:
        if not secrets.compare_digest(request.match_info["token"], self.bot_token):
            return Failure(401, "Unauthorized").response()
        method = {"sendmessage": self._send, "answercallbackquery": self._answer}.get(
            request.match_info["method"].lower()  # the Bot API ignores the case of method names
        )
        if method is None:
            return Failure(404, "Not Found").response()
        params = await _params(request)
        if params is None:
            return bad_request("can't parse request JSON object")
        return self._failures.popleft().response() if self._failures else method(params)

    def _send(self, params: dict[str, Any]) -> web.Response:
        chat_id, text = params.get("chat_id"), params.get("text")
        if chat_id in (None, ""):
            return bad_request("chat_id is empty")
        if not isinstance(text, str) or not text.strip():
            return bad_request("message text is empty")
        if len(text) > TEXT_MAX_CHARS:
            return bad_request("message is too long")
        markup = _markup(params.get("reply_markup"))
        if isinstance(markup, web.Response):
            return markup
        sent = SentMessage(next(self._message_ids), _chat_id(chat_id), text, markup)
        self.messages.append(sent)
        return ok(sent.json())

    def _answer(self, params: dict[str, Any]) -> web.Response:
        query_id, text = str(params.get("callback_query_id", "")), params.get("text", "")
        if self._queries.pop(query_id, None) is None:
            return bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if not isinstance(text, str) or len(text) > ANSWER_MAX_CHARS:
            return bad_request("MESSAGE_TOO_LONG")
        self.answers.append(CallbackAnswer(query_id, text, bool(params.get("show_alert"))))
        return ok(True)


async def _params(request: web.Request) -> dict[str, Any] | None:
    """The call's parameters: JSON, or a form / query string with JSON-serialized objects."""
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None
    form = {**request.query, **(await request.post())}
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _markup(raw: object) -> dict[str, Any] | web.Response | None:
    """The reply markup, checked as Telegram checks inline keyboards; a 400 when bad."""
    if raw is None:
        return None
    try:
        markup: Any = json.loads(raw) if isinstance(raw, str) else raw
        rows = markup["inline_keyboard"]
        buttons = [button for row in rows for button in row]
    except (ValueError, TypeError, KeyError):
        return bad_request("can't parse reply keyboard markup JSON object")
    for button in buttons:
        data = button.get("callback_data") if isinstance(button, dict) else None
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= CALLBACK_DATA_MAX_BYTES:
            return bad_request("BUTTON_DATA_INVALID")
        if not isinstance(button.get("text"), str) or not button["text"]:
            return bad_request("text buttons are unallowed in the inline keyboard")
    return dict(markup)


def _chat_id(value: object) -> int | str:
    """Telegram takes an integer id or ``@channelusername``, as a number or a string."""
    text = str(value)
    return int(text) if text.lstrip("-").isdigit() else text


def _user_id(chat_id: int | str) -> int:
    """In a private chat the chat id is the person's user id."""
    return chat_id if isinstance(chat_id, int) and chat_id > 0 else 10_000_001
