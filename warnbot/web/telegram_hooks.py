"""Telegram webhook: a press of the "确认收到" button confirms its request.

Telegram sends every update as JSON with the ``secret_token`` given to
setWebhook in ``X-Telegram-Bot-Api-Secret-Token``. A request without exactly
that secret is refused with 403 and changes nothing; with no secret configured,
or no Telegram channel running, every request is refused: there is no weaker
fallback. The button's data is ``ack:<signed token>``, so a press proves which
request it answers, and recording is idempotent.

The press is answered through the channel (``answerCallbackQuery``) so the
spinner on the person's button stops and they see the outcome. Failing to
answer only costs that spinner, so it is logged and the update still gets 200:
a non-2xx would make Telegram deliver the update again.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from warnbot import log
from warnbot.app import App
from warnbot.channels.telegram import SECRET_HEADER, TelegramBot, ack_token_of
from warnbot.errors import SendError
from warnbot.model import AckPath
from warnbot.web.keys import APP

_log = log.get(__name__)

CONFIRMED = "已确认收到 Confirmed"
INVALID = "链接无效 Invalid"
CLOSED = "本次响应已结束 This response has ended"


async def update(request: web.Request) -> web.Response:
    """One update from Telegram: record an ack button's press, ignore anything else."""
    app = request.app[APP]
    bot = _bot(app)
    if bot is None or not bot.accepts(request.headers.get(SECRET_HEADER)):
        _log.warning("telegram_secret_refused", path=request.path)
        raise web.HTTPForbidden(text="invalid secret token")
    query = _callback_query(await _json(request))
    token = ack_token_of(query.get("data")) if query else None
    if query is None or token is None:
        return web.Response(text="ignored")
    outcome = await app.token_ack(token, AckPath.CHAT)
    if outcome is not None and outcome.kind == "closed":
        text = CLOSED
    else:
        text = CONFIRMED if outcome is not None and outcome.result is not None else INVALID
    await _answer(bot, query["id"], text)
    return web.Response(text="ok")


def _bot(app: App) -> TelegramBot | None:
    channel = app.channels.get("telegram")
    return channel if isinstance(channel, TelegramBot) else None


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body is not JSON") from None


def _callback_query(update: Any) -> dict[str, Any] | None:
    """The update's callback query when it is one Telegram could have sent."""
    query = update.get("callback_query") if isinstance(update, dict) else None
    if isinstance(query, dict) and isinstance(query.get("id"), str):
        return query
    return None


async def _answer(bot: TelegramBot, query_id: str, text: str) -> None:
    try:
        await bot.answer_callback(query_id, text)
    except SendError as e:
        _log.warning("telegram_answer_failed", error=e.reason)
