"""Twilio webhooks. Every request must carry a valid ``X-Twilio-Signature``.

The signature is computed over the public URL Twilio called (``web.public_url``
plus the path), so it is checked against that, not against whatever address a
proxy handed us. With no auth token configured, every request is refused:
there is no weaker fallback.
"""

from __future__ import annotations

from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from warnbot import log
from warnbot.channels.twilio_voice import answer
from warnbot.model import AckPath
from warnbot.web.keys import APP

_log = log.get(__name__)


async def inbound_sms(request: web.Request) -> web.Response:
    """An SMS reply: attribute it, record the answer, and text back what happened.

    Twilio retries a webhook that timed out with the same ``MessageSid``: the answer
    is recorded once, and a report back it carries is summed once."""
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    if not _signed(request, form):
        _log.warning("twilio_signature_refused", path=request.path)
        raise web.HTTPForbidden(text="invalid signature")
    sid = form.get("MessageSid") or form.get("SmsSid")
    answer = await request.app[APP].sms_reply(
        form.get("From", ""), form.get("Body", ""), f"twilio:{sid}" if sid else None
    )
    twiml = MessagingResponse()
    if answer:  # nothing to say here when the answer went through the outbox (退订)
        twiml.message(answer)
    return web.Response(text=str(twiml), content_type="application/xml")


async def status(request: web.Request) -> web.Response:
    """A delivery report (StatusCallback): idempotent, in any order; 204 either way."""
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    if not _signed(request, form):
        _log.warning("twilio_signature_refused", path=request.path)
        raise web.HTTPForbidden(text="invalid signature")
    sid, state = form.get("MessageSid", ""), form.get("MessageStatus", "")
    if sid and state:
        await request.app[APP].delivery_report(sid, state, form.get("ErrorCode") or None)
    return web.Response(status=204)


async def keypad(request: web.Request) -> web.Response:
    """A digit pressed during a warning call: 1 confirms the request the call is about."""
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    if not _signed(request, form):
        _log.warning("twilio_signature_refused", path=request.path)
        raise web.HTTPForbidden(text="invalid signature")
    confirmed: bool | None = False
    closed = False
    if form.get("Digits") == "1":
        outcome = await request.app[APP].token_ack(request.match_info["token"], AckPath.KEYPAD)
        confirmed = None if outcome is None else outcome.result is not None
        closed = outcome is not None and outcome.kind == "closed"
    return web.Response(text=answer(confirmed, closed), content_type="application/xml")


def _signed(request: web.Request, form: dict[str, str]) -> bool:
    app = request.app[APP]
    token = app.settings.twilio.auth_token
    signature = request.headers.get("X-Twilio-Signature", "")
    if token is None or not signature:
        return False
    url = app.public_url + request.path_qs
    return bool(RequestValidator(token.get_secret_value()).validate(url, form, signature))
