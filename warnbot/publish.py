"""Publish each incident transition as CAP: keep the document, push it downstream.

The document (``capout.follow``) and its pushes enter the store in one
transaction, so the outbox delivers them with retries like any message; an
Update or Cancel references the incident's previous document.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from warnbot import capout, drills
from warnbot.model import Incident, Message
from warnbot.settings import Settings
from warnbot.store import Store


async def publish_cap(
    store: Store,
    settings: Settings,
    incident: Incident,
    kind: str,
    now: datetime,
    event_id: int | None = None,
) -> capout.Published | None:
    """Publish ``kind`` (open, upgrade, downgrade, update, lift) of ``incident``; a
    drill's document is kept but never pushed downstream. With ``event_id`` (the
    incident event it publishes), publishing that event again does nothing."""
    if settings.cap is None:
        return None
    if event_id is not None and await store.cap_published(event_id):
        return None
    previous = await store.latest_cap(incident.id)
    if previous is None and kind == "lift":
        return None  # never published (CAP was configured later): nothing to cancel
    at = now.replace(microsecond=0)
    n = await store.published_in_second(at)
    at += timedelta(seconds=n // 10)  # GB/T 35965 numbers documents 0–9 within a second
    doc = capout.follow(
        incident,
        kind if previous else "open",
        issuer=capout.Issuer(**settings.cap.model_dump()),
        previous=previous[0] if previous else None,
        now=at,
        sequence=n % 10,
    )
    pushes = [
        Message(f"cap:{doc.identifier}:{d.name}", "cap", d.url, doc.xml.decode(), incident.id, None)
        for d in settings.downstream
        if drills.reaches_public(incident)  # a drill's document (Exercise) is kept, never pushed
    ]
    await store.add_cap(
        incident.id, doc.identifier, doc.reference, at, doc.msg_type, doc.xml, pushes, now, event_id
    )
    return doc
