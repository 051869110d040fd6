"""Aliyun SMS pushes: replies (上行消息, SmsUp) and delivery receipts (状态报告,
SmsReport), both by Aliyun's HTTP batch push.

Aliyun POSTs a JSON array, one object per reply::

    [{"phone_number": "1380000****", "content": "1", "send_time": "2017-09-01 00:00:00",
      "dest_code": "1234", "sequence_id": "1234567890"}]

and wants HTTP 200 with ``{"code": 0, "msg": "接收成功"}``; any other answer is
pushed again later (1, 5, 10 minutes). The push carries no signature, so the
path carries a long random secret, ``POST /hooks/aliyun/sms/{secret}``, compared
in constant time with ``[channels.aliyun] inbound_secret``. Without one every
request is refused. A wrong secret gets 404, so the endpoint does not show it
exists; a caller outside ``inbound_allow`` gets 403. The allowlist sees the TCP
peer (``request.remote``): behind a reverse proxy that is the proxy, so list
the proxy and let it filter, or leave the list empty. A proxy's access log
records paths: keep this one out of it, as it is a credential.

Each reply goes to ``App.sms_reply`` as ``+86`` + the number; a malformed item
is logged and skipped and the rest are taken. Answers are recorded once, and a
report back is filed once per ``sequence_id``, so a batch Aliyun pushes again
changes nothing. The reply text ``sms_reply`` returns
is not sent back: an SmsUp answer cannot carry one.

Delivery receipts come to ``POST /hooks/aliyun/report/{secret}`` (the same secret
and allowlist), a JSON array too::

    [{"phone_number": "1380000****", "send_time": "2017-01-01 00:00:00",
      "report_time": "2017-01-01 00:00:05", "success": false,
      "err_code": "MOBILE_NOT_ON_SERVICE", "err_msg": "停机、空号、暂停服务、关机、不在服务区",
      "sms_size": "1", "biz_id": "900619746936498440^0", "out_id": "request:7:aliyun"}]

Each goes to ``App.delivery_report`` by its ``biz_id`` (SendSms's ``BizId``, which
the dispatcher kept as the message's provider id): ``success`` true is delivered,
false is undelivered with ``err_code``, and a code that says the number cannot
take SMS fails the message over to the person's next address, as Twilio's 30006
does. Reports apply once and in any order, and one that overtakes the recording
of its send waits for it (``warnbot.store.delivery``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from warnbot import log
from warnbot.app import App
from warnbot.channels.aliyun_sms import NAME, AliyunInbound, reconciled_id
from warnbot.web.keys import APP

_log = log.get(__name__)
_MAINLAND = re.compile(r"(?:\+?86|0086)?(1[3-9]\d{9})")
SUCCESS = {"code": 0, "msg": "接收成功"}  # Aliyun checks only that code is a number
MAX_ID_CHARS = 64  # an outbox provider id; Aliyun's BizId is about 20


async def inbound_sms(request: web.Request) -> web.Response:
    """One SmsUp batch: every well-formed reply is attributed and recorded."""
    return await _batch(request, "aliyun_smsup", _take_reply)


async def delivery_reports(request: web.Request) -> web.Response:
    """One SmsReport batch: every well-formed receipt is applied to its message."""
    return await _batch(request, "aliyun_smsreport", _take_receipt)


async def _batch(
    request: web.Request, event: str, take: Callable[[App, Any], Awaitable[bool]]
) -> web.Response:
    """Authorize a push, then ``take`` each item of its array; a malformed item is
    logged and skipped, the rest are taken, and Aliyun hears success."""
    app = request.app[APP]
    _authorize(request, _inbound(app))
    items = await _items(request)
    taken = 0
    for index, item in enumerate(items):
        if await take(app, item):
            taken += 1
        else:
            _log.warning(f"{event}_item_skipped", index=index)
    _log.info(event, items=len(items), taken=taken)
    return web.json_response(SUCCESS)


async def _take_receipt(app: App, item: Any) -> bool:
    """Apply one delivery receipt; False when it is malformed."""
    report = _receipt(item)
    if report is not None:
        await app.delivery_report(*report)
    return report is not None


def _receipt(item: Any) -> tuple[str, str, str | None, str | None] | None:
    """``(biz_id, status, error code, stand-in id)`` from one pushed receipt, or None when
    malformed; the stand-in is the id a reconciled send was recorded under (its OutId's)."""
    if not isinstance(item, dict):
        return None
    biz_id, success = item.get("biz_id"), _flag(item.get("success"))
    if not isinstance(biz_id, str) or not 0 < len(biz_id.strip()) <= MAX_ID_CHARS:
        return None
    if success is None:
        return None
    out_id = item.get("out_id")
    stand_in = reconciled_id(out_id) if isinstance(out_id, str) and out_id else None
    if success:
        return biz_id.strip(), "delivered", None, stand_in
    code = item.get("err_code")
    error = code.strip() if isinstance(code, str) and code else None
    return biz_id.strip(), "undelivered", error, stand_in


def _flag(value: Any) -> bool | None:
    """``success``: a JSON boolean as documented, or its text (``"true"``) as some pushes
    send it; anything else is not a receipt."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _inbound(app: App) -> AliyunInbound | None:
    """The push settings, or None when they are missing or invalid (then all is refused)."""
    try:
        return AliyunInbound.model_validate(app.settings.channels.get(NAME, {}))
    except ValidationError as e:
        _log.error("aliyun_inbound_misconfigured", problems=len(e.errors()))
        return None


def _authorize(request: web.Request, inbound: AliyunInbound | None) -> None:
    """404 unless the path secret matches; then 403 unless the peer is allowed."""
    if inbound is None or not _opens(request, inbound):
        raise web.HTTPNotFound()
    if not inbound.allows(request.remote):
        _log.warning(
            "aliyun_push_address_refused", path=request.path.split("/")[3], remote=request.remote
        )
        raise web.HTTPForbidden(text="address not allowed")


def _opens(request: web.Request, inbound: AliyunInbound) -> bool:
    secret = inbound.inbound_secret
    return secret is not None and _same(request.match_info["secret"], secret.get_secret_value())


def _same(given: str, expected: str) -> bool:
    """Constant time, whatever the lengths: compare digests, not the strings."""
    digest = hashlib.sha256
    return hmac.compare_digest(digest(given.encode()).digest(), digest(expected.encode()).digest())


async def _items(request: web.Request) -> list[Any]:
    """The pushed JSON array; anything else is refused with 400."""
    try:
        items = json.loads(await request.read())
    except (UnicodeDecodeError, ValueError):
        raise web.HTTPBadRequest(text="expected a JSON array") from None
    if not isinstance(items, list):
        raise web.HTTPBadRequest(text="expected a JSON array")
    return items


async def _take_reply(app: App, item: Any) -> bool:
    """Record one reply; False when it is malformed."""
    reply = _reply(item)
    if reply is not None:
        await app.sms_reply(*reply, message_id=_message_id(item, *reply))
    return reply is not None


def _reply(item: Any) -> tuple[str, str] | None:
    """``("+86…", content)`` from one pushed object, or None when it is malformed."""
    if not isinstance(item, dict):
        return None
    phone, content = item.get("phone_number"), item.get("content")
    if not isinstance(phone, str) or not isinstance(content, str):
        return None
    match = _MAINLAND.fullmatch(phone.strip())
    return ("+86" + match.group(1), content) if match else None


def _message_id(item: dict[str, Any], phone: str, content: str) -> str | None:
    """The reply's identity across Aliyun's re-pushes: its ``sequence_id``, else (an
    older push without one) the sender, send time and text together."""
    sequence = item.get("sequence_id")
    if isinstance(sequence, str | int) and not isinstance(sequence, bool) and str(sequence):
        return f"aliyun:{sequence}"[:200]
    sent = item.get("send_time")
    if not isinstance(sent, str) or not sent:
        return None
    digest = hashlib.sha256(f"{phone}|{sent}|{content}".encode()).hexdigest()[:32]
    return f"aliyun:{digest}"
