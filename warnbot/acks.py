"""Acks: one intake for every path by which a person answers 叫应.

Each responsible person confirms for themself; nobody's answer counts for
another, except a duty officer recording, under their own name, an answer
taken by phone. An SMS reply is attributed by the sender's number and matched
by reply code: a person's requests are numbered 11, 12, … (``FIRST_REPLY_CODE``),
and ``"12"`` answers that person's request with code 12. A bare ``"1"`` /
``"收到"`` / ``"ok"`` names no request: it answers the only open request when
there is exactly one, and with several the reply lists the open codes and their
headlines — it never guesses. In a muster, ``"到岗"`` / ``"到达"`` — or a bare
``"2"`` — reports arrival. Signed links, voice keypad digits and chat buttons carry a
signed token naming their request. Recording is idempotent: the first answer
counts, repeats change nothing; every answer's text is kept verbatim (reports
back are parsed from it) with its path, time and, for a duty officer, the name.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from warnbot import receipts
from warnbot.model import BARE_REPLY, AckPath, Request
from warnbot.settings import Settings
from warnbot.store import AckResult, Store
from warnbot.store.intake import Sender

ACK_WORDS = ("已收到", "收到", "确认", "好的", "明白", "ok", "okay", "yes", "received", "y")
ARRIVE_WORDS = ("已到岗", "到岗", "已到达", "到达", "已到位", "到位", "已到", "arrived")
ARRIVE_CODE = "2"
_CODE = re.compile(r"(\d{1,3})(?![\d])[\s,，.。:：;；、-]*(.*)", re.DOTALL)
_TRIM = " ,，.。!！:：;；、"


@dataclass(frozen=True)
class Reply:
    """A parsed SMS answer: an explicit ``code`` or None for a bare acknowledgement."""

    code: str | None
    report: str = ""


@dataclass(frozen=True)
class Outcome:
    """What an answer did: ``confirmed``, ``duplicate``, ``arrived`` (muster: 到岗),
    ``which`` (say which code), ``unknown`` (not an answer, or nothing to answer),
    ``closed`` (a signed token of an incident already lifted: it has expired), or
    ``stranger`` (number not on any roster)."""

    kind: str
    result: AckResult | None = None
    open: list[Request] = field(default_factory=list)
    sender: Sender | None = None  # an SMS's sender, as read before recording


def parse_reply(text: str) -> Reply | None:
    """Read a reply code or an acknowledgement word; None when it is neither.

    Full-width digits (１) are folded to ASCII first, since phones send both.
    """
    folded = unicodedata.normalize("NFKC", text).strip()
    m = _CODE.fullmatch(folded)
    if m:
        return Reply(str(int(m[1])), m[2].strip())
    word = _leading_word(folded, ACK_WORDS + ARRIVE_WORDS)
    return None if word is None else Reply(None, folded[len(word) :].strip(_TRIM))


def says_arrived(reply: Reply) -> bool:
    """Whether an answer reports arrival: 到岗/到达…, alone or after a reply code."""
    text = unicodedata.normalize("NFKC", reply.report).strip()
    return _leading_word(text, ARRIVE_WORDS) is not None


def _leading_word(text: str, words: Sequence[str]) -> str | None:
    lowered = text.casefold()
    for word in words:
        if lowered.startswith(word) and _word_ends(lowered, len(word)):
            return word
    return None


def _word_ends(text: str, at: int) -> bool:
    """ASCII words must end at a boundary ("ok" but not "okra"); Chinese ones always do."""
    return at == len(text) or not (
        text[at - 1].isascii() and text[at].isascii() and text[at].isalnum()
    )


def choose(open_requests: Sequence[Request], reply: Reply) -> Request | None:
    """The request a reply answers, or None when it is ambiguous or matches none. A bare
    "1" is an acknowledgement like "收到", not a code: with several open it is ambiguous
    (even when an old request still carries code 1)."""
    if reply.code is not None and reply.code != BARE_REPLY:
        hits = [r for r in open_requests if r.reply_code == reply.code]
        if hits:
            return hits[0]
    return open_requests[0] if len(open_requests) == 1 else None


def arrival(
    text: str, reply: Reply, open_requests: Sequence[Request], musters: Sequence[Request]
) -> Request | None:
    """The muster request an answer reports arrival for, or None when it is no arrival.

    "到岗" alone or after a code says it; so does a bare ``"2"``, unless an open request
    has that code (one asked before codes began at 11: then it answers that request).
    """
    if not musters:
        return None
    if says_arrived(reply):
        coded = [m for m in musters if m.reply_code == reply.code]
        return coded[0] if coded else musters[0]
    if reply.code is None:
        folded = unicodedata.normalize("NFKC", text).strip()
        return musters[0] if _leading_word(folded, ARRIVE_WORDS) else None
    taken = any(r.reply_code == ARRIVE_CODE for r in open_requests)
    if reply.code == ARRIVE_CODE and not reply.report and not taken:
        return musters[0]
    return None


async def intake_sms(store: Store, phone: str, text: str, now: datetime) -> Outcome:
    """Attribute an inbound SMS to its sender and record the answer it carries: one
    read (the sender and what they may answer), then at most one transaction."""
    sender = await store.sender(phone)
    if sender is None:
        return Outcome("stranger")
    open_requests = sender.open
    reply = parse_reply(text)
    if reply is None:
        return Outcome("unknown", open=open_requests, sender=sender)
    muster = arrival(text, reply, open_requests, sender.musters)
    if muster is not None:
        outcome = await _arrive(store, muster.id, AckPath.SMS, text, now)
        return dataclasses.replace(outcome, sender=sender)
    request = choose(open_requests or sender.answered, reply)
    if request is None:
        kind = "which" if open_requests else "unknown"
        return Outcome(kind, open=open_requests, sender=sender)
    # an answer to a request already confirmed is kept too: it may carry a report back
    outcome = await _record(store, request.id, AckPath.SMS, text, now)
    return dataclasses.replace(outcome, sender=sender)


async def intake_token(
    store: Store, request_id: int, path: AckPath, now: datetime, text: str = ""
) -> Outcome:
    """Record a confirmation from a signed link, keypad digit or chat button; the
    caller has verified the token that named ``request_id``. A token expires with its
    incident: once lifted (解除) it records nothing, so an old SMS forwarded or found
    later cannot write into a closed response."""
    req = await store.request(request_id)
    incident = await store.incident(req.incident_id) if req is not None else None
    if incident is None:
        return Outcome("unknown")
    if incident.status != "open":
        return Outcome("closed")
    return await _record(store, request_id, path, text, now)


async def intake_link(
    store: Store, request_id: int, now: datetime, path: AckPath = AckPath.LINK
) -> Outcome:
    """Kept for callers of the first version: ``intake_token`` with a link."""
    return await intake_token(store, request_id, path, now)


async def intake_duty_officer(
    store: Store,
    incident_id: int,
    responder_key: str,
    by: str,
    now: datetime,
    note: str = "",
    arrived: bool = False,
) -> Outcome:
    """A duty officer records an answer taken by phone, under their own name; the
    person's current request on the incident is confirmed (or marked arrived). A
    note that reports something back ("已转移5户12人", "3号已转移") is filed as a
    report back (path ``duty_officer``), as the same words by SMS would be."""
    if not by.strip():
        raise ValueError("the duty officer's name is required (--by)")
    incident = await store.incident(incident_id)
    if incident is not None and incident.status != "open":
        return Outcome("closed")  # a lifted response takes no more answers, by any path
    current = [
        r
        for r in await store.requests_of(incident_id)
        if r.responder_key == responder_key and r.status != "superseded"
    ]
    if not current:
        return Outcome("unknown")
    request_id = current[-1].id
    if arrived:
        outcome = await _arrive(store, request_id, AckPath.DUTY_OFFICER, note, now, by.strip())
    else:
        outcome = await _record(store, request_id, AckPath.DUTY_OFFICER, note, now, by.strip())
    if outcome.result is not None:
        await file_note(store, outcome.result.request, note, now)
    return outcome


async def file_note(store: Store, request: Request, note: str, now: datetime) -> bool:
    """File a duty officer's note as a report back when figures or moved entries can be
    read from it; True when it was filed."""
    report = receipts.parse_report(note)
    if not report.parsed:
        return False
    person = (await store.people_by_key([request.responder_key])).get(request.responder_key)
    if person is None:
        return False
    await store.file_report(
        request.incident_id, request.id, person, report, AckPath.DUTY_OFFICER.value, now
    )
    return True


async def _record(
    store: Store, request_id: int, path: AckPath, text: str, now: datetime, by: str = ""
) -> Outcome:
    result = await store.record_ack(request_id, path.value, text, now, by)
    if result is None:
        return Outcome("unknown")
    return Outcome("confirmed" if result.new else "duplicate", result)


async def _arrive(
    store: Store, request_id: int, path: AckPath, text: str, now: datetime, by: str = ""
) -> Outcome:
    result = await store.record_arrival(request_id, path.value, text, now, by)
    if result is None:
        return Outcome("unknown")
    return Outcome("arrived" if result.new else "duplicate", result)


async def record_by_phone(settings: Settings, args: Any) -> int:
    """``warnbot ack``: record a duty officer's entry; 0 when recorded, 1 when there is
    nothing to confirm (the line printed says why)."""
    store = Store.connect(settings.database_url)
    try:
        await store.migrate()
        outcome = await intake_duty_officer(
            store,
            args.incident,
            args.person,
            args.by,
            datetime.now(UTC),
            args.note,
            args.arrived,
        )
    except ValueError as e:
        print(f"错误 error: {e}", file=sys.stderr)
        return 1
    finally:
        await store.close()
    if outcome.kind == "closed":
        ended = f"已解除 lifted: 响应 #{args.incident} 已结束 that response has ended"
        print(ended, file=sys.stderr)
        return 1
    if outcome.result is None:
        print(
            f"未找到 not found: {args.person} 在响应 #{args.incident} 中没有叫应请求 "
            "has no request in that incident",
            file=sys.stderr,
        )
        return 1
    req = outcome.result.request
    what = {"confirmed": "已登记确认 recorded", "arrived": "已登记到岗 arrival recorded"}.get(
        outcome.kind, "此前已确认 already confirmed (kept in the audit trail)"
    )
    late = " 迟到 late" if outcome.result.late else ""
    print(f"{what}: #{req.incident_id} {req.responder_key}{late} — {args.by}")
    return 0
