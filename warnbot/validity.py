"""How long a provider may keep trying to deliver a message (Twilio ``ValidityPeriod``).

A warning that sits in a provider's queue for hours and then arrives does harm:
the person acts on a stale ask, and the ladder has already moved on. So every
Twilio SMS carries a validity period: asks and escalations of an incident at an
urgent level (``[twilio] urgent_levels``, default Ⅰ and Ⅱ) the short
``urgent_validity_s`` (600 s) — an undelivered one then fails and fails over —
everything else (public tips, lift notices) the longer ``validity_period_s``.
Aliyun's SendSms has no such parameter: its messages wait as long as Aliyun keeps
them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from warnbot.model import Level
from warnbot.settings import TwilioSettings
from warnbot.store import OutboxRow, Store

# The message kinds (the key's first part) that ask a person, report silence or
# lateness, or tell the duty officer of a response starting, rising or losing people.
URGENT_KINDS = frozenset(
    {
        "request",
        "repeat",
        "silent",
        "duty",
        "muster_late",
        "duty-opened",
        "duty-upgraded",
        "duty-unreachable",
    }
)


def urgent(row: OutboxRow) -> bool:
    """An ask or escalation (lane 0) of an incident: its level decides."""
    return row.priority == 0 and row.incident_id is not None and kind(row.key) in URGENT_KINDS


def kind(key: str) -> str:
    return key.split(":", 1)[0]


def validity_s(row: OutboxRow, level: Level | None, twilio: TwilioSettings) -> int | None:
    """Seconds the provider may hold ``row``'s message, or None for its own default."""
    if level is not None and urgent(row) and level in twilio.urgent_level_set():
        return twilio.urgent_validity_s or twilio.validity_period_s
    return twilio.validity_period_s


async def for_rows(
    store: Store, twilio: TwilioSettings, rows: Sequence[OutboxRow]
) -> Mapping[int, int | None]:
    """Each row's validity; one look-up of the levels of the batch's urgent incidents."""
    wanted = {r.incident_id for r in rows if urgent(r) and r.incident_id is not None}
    levels = await store.incident_levels(wanted) if wanted and twilio.urgent_validity_s else {}
    return {r.id: validity_s(r, levels.get(r.incident_id or 0), twilio) for r in rows}
