"""Acks: one intake for every path by which a person answers 叫应.

Each responsible person confirms for themself; nobody's answer counts for
another. An SMS reply is attributed by the sender's number and matched by
reply code: ``"2"`` answers that person's request with code 2, and a bare
``"收到"`` / ``"ok"`` / ``"1"`` answers the only open request when there is
exactly one. Recording is idempotent: the first answer counts, repeats are
reported but change nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from warnbot.model import AckPath, Request
from warnbot.store import AckResult, Store

ACK_WORDS = ("已收到", "收到", "确认", "好的", "明白", "ok", "okay", "yes", "received", "y")
_CODE = re.compile(r"(\d{1,3})(?![\d])[\s,，.。:：;；、-]*(.*)", re.DOTALL)


@dataclass(frozen=True)
class Reply:
    """A parsed SMS answer: an explicit ``code`` or None for a bare acknowledgement."""

    code: str | None
    report: str = ""


@dataclass(frozen=True)
class Outcome:
    """What an SMS did: ``confirmed``, ``duplicate``, ``which`` (say which code),
    ``unknown`` (not an answer), or ``stranger`` (number not on any roster)."""

    kind: str
    result: AckResult | None = None
    open: list[Request] = field(default_factory=list)


def parse_reply(text: str) -> Reply | None:
    """Read a reply code or an acknowledgement word; None when it is neither.

    Full-width digits (１) are folded to ASCII first, since phones send both.
    """
    folded = unicodedata.normalize("NFKC", text).strip()
    m = _CODE.fullmatch(folded)
    if m:
        return Reply(str(int(m[1])), m[2].strip())
    lowered = folded.casefold()
    for word in ACK_WORDS:
        if lowered.startswith(word) and _word_ends(lowered, len(word)):
            return Reply(None, folded[len(word) :].strip(" ,，.。!！:：;；、"))
    return None


def _word_ends(text: str, at: int) -> bool:
    """ASCII words must end at a boundary ("ok" but not "okra"); Chinese ones always do."""
    return at == len(text) or not (
        text[at - 1].isascii() and text[at].isascii() and text[at].isalnum()
    )


def choose(open_requests: Sequence[Request], reply: Reply) -> Request | None:
    """The request a reply answers, or None when it is ambiguous or matches none."""
    if reply.code is not None:
        hits = [r for r in open_requests if r.reply_code == reply.code]
        if hits:
            return hits[0]
    return open_requests[0] if len(open_requests) == 1 else None


async def intake_sms(store: Store, phone: str, text: str, now: datetime) -> Outcome:
    """Attribute an inbound SMS to its sender and record the answer it carries."""
    person = await store.responder_for_phone(phone)
    if person is None:
        return Outcome("stranger")
    open_requests = await store.open_requests_for(person)
    reply = parse_reply(text)
    if reply is None:
        return Outcome("unknown", open=open_requests)
    request = choose(open_requests, reply)
    if request is None:
        return Outcome("which" if open_requests else "unknown", open=open_requests)
    return await _record(store, request.id, AckPath.SMS, text, now)


async def intake_link(
    store: Store, request_id: int, now: datetime, path: AckPath = AckPath.LINK
) -> Outcome:
    """Record a confirmation from a signed link or button (verified by the caller)."""
    return await _record(store, request_id, path, "", now)


async def _record(
    store: Store, request_id: int, path: AckPath, text: str, now: datetime
) -> Outcome:
    result = await store.record_ack(request_id, path.value, text, now)
    if result is None:
        return Outcome("unknown")
    return Outcome("confirmed" if result.new else "duplicate", result)
