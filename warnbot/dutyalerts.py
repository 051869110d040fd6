"""Operational alerts to the duty officer on shift (值班提示). Pure.

The duty officer on shift for an incident's region (the rota, walking up the
region tree; else the roster's duty officers) is told when the incident opens,
is upgraded or lifted, and when persons are given up as unreachable (无法联系).
One SMS per officer and event, rendered from ``templates/sms/<lang>/duty_alert.j2``.
Each message's key names the event, the incident and a ``token`` (the level for a
lifecycle event; a digest of the ladder steps for unreachable persons), so
deciding twice — a repeated tick, a second process, a restart — sends once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from warnbot.model import Incident, Message, Responder, Step

EVENTS = ("opened", "upgraded", "lifted", "unreachable")


def messages(
    incident: Incident,
    event: str,
    token: str,
    officers: Iterable[Responder],
    render: Callable[[Responder], str],
    channel: str,
) -> list[Message]:
    """One alert per officer with a phone, keyed ``duty-<event>:<incident>:<token>:…``."""
    if event not in EVENTS:
        raise ValueError(f"unknown duty alert {event!r}")
    return [
        Message(
            f"duty-{event}:{incident.id}:{token}:{o.key}:{channel}",
            channel,
            o.phones[0],
            render(o),
            incident.id,
            o.key,
        )
        for o in officers
        if o.phones
    ]


def steps_token(steps: Sequence[Step]) -> str:
    """A short, stable name for a group of ladder steps (their keys, sorted)."""
    return hashlib.sha256("|".join(sorted(s.key for s in steps)).encode()).hexdigest()[:16]
