"""Incident transitions, durably: decide, store the decision, then follow it up.

``apply`` stores each transition with its journal row (``incident_events``) in one
transaction — for a feed's warning, together with the warning itself — and only
then does the work the transition calls for: an open asks everyone the plan
names, alerts the duty officer and tips the public; an upgrade stops the old
ladder and asks again under the new level; a lift tells everyone reached; each
is published as CAP. Every follow-up is idempotent (outbox keys, requests unique
per person and level, one CAP document per event), so ``resume``, run by the
scheduler-lease holder, simply follows up again any event that a crash or a
store outage left unfinished: a decision, once stored, is never lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from warnbot import drills, log
from warnbot.evaluate import Transition, evaluate
from warnbot.model import Incident
from warnbot.model import Warning as CapWarning
from warnbot.publish import publish_cap
from warnbot.store.incidents import Applied, Change

if TYPE_CHECKING:
    from warnbot.app import App

_log = log.get(__name__)
RESUME_AFTER_S = 30.0  # an event younger than this may still be in its first follow-up


async def ingest(app: App, feed: str, w: CapWarning) -> list[Transition]:
    """Take in one warning: what it changes is stored with it, in one transaction, so a
    warning is either seen and decided on, or not seen at all (and polled again)."""
    if await app.store.warning_expiries([w.key]):
        return []  # seen before: a cheap early answer; the transaction decides for sure
    opened = await app.store.open_incidents()
    expiries = await app.store.warning_expiries(k for _, k in opened if k)
    transitions = evaluate(
        app.settings.rules, w, opened, app.clock(), tree=app.regions, holder_expires=expiries
    )
    changes = [change_of(app, t, w.key, feed) for t in transitions]
    applied = await app.store.apply_changes(changes, app.clock(), warning=(feed, w))
    if applied is None:
        return []  # another process took this warning first
    await follow_up_all(app, applied)
    return transitions


async def apply(
    app: App, transitions: Sequence[Transition], warning_key: str | None, source: str
) -> list[Applied]:
    """Store and follow up transitions decided elsewhere (expiry, readings, by hand)."""
    changes = [change_of(app, t, warning_key, source) for t in transitions]
    applied = await app.store.apply_changes(changes, app.clock()) or []
    await follow_up_all(app, applied)
    return applied


async def open_drafts(
    app: App,
    drafts: Sequence[Incident],
    reason: str,
    source: str,
    excluded: Mapping[str, Sequence[str]] | None = None,
) -> list[Incident]:
    """Open incidents drafted elsewhere (a manual response, a drill), all in one
    transaction; ``excluded`` names, per draft key, people asked by another of them."""
    changes = [
        Change(
            "open",
            d.level,
            reason,
            source,
            draft=d,
            detail={"exclude": sorted(excluded[d.key])} if excluded and excluded.get(d.key) else {},
        )
        for d in drafts
    ]
    applied = await app.store.apply_changes(changes, app.clock()) or []
    await follow_up_all(app, applied)
    return [a.incident for a in applied]


def change_of(app: App, t: Transition, warning_key: str | None, source: str) -> Change:
    """The stored form of a transition: an open carries its draft (and the level's
    policy, frozen onto it); an upgrade, the new level's policy."""
    _log.info("transition", kind=t.kind, incident=t.key, level=t.level.roman, reason=t.reason)
    if t.kind == "open":
        return Change(
            "open", t.level, t.reason, source, draft=_draft(app, t, source), warning_key=warning_key
        )
    policy = app.settings.level_policy(t.level) if t.kind == "upgrade" else None
    return Change(
        t.kind, t.level, t.reason, source, t.incident_id, warning_key=warning_key, policy=policy
    )


def _draft(app: App, t: Transition, source: str) -> Incident:
    return Incident(
        id=0,
        key=t.key,
        hazard=t.hazard,
        region_code=t.region_code,
        level=t.level,
        status="open",
        opened_at=app.clock(),
        headline=t.headline,
        policy=app.settings.level_policy(t.level),
        source=source,
    )


async def follow_up_all(app: App, applied: Sequence[Applied]) -> None:
    for a in applied:
        await follow_up(app, a)


async def follow_up(app: App, a: Applied) -> None:
    """Do what the transition calls for, then close its event. Safe to run again."""
    incident = a.incident
    if a.kind == "open":
        await _opened(app, incident, a.reason, a.detail)
    elif a.kind == "lift":
        app.observe("lifted", key=incident.key, reason=a.reason)
        await app.tell_reached(incident.id, "lifted")
        await app.alert_duty(incident.id, "lifted")
    elif a.kind == "upgrade":
        app.observe("upgrade", key=incident.key, level=incident.level, reason=a.reason)
        await app.reask(incident)
        await app.alert_duty(incident.id, "upgraded")
    elif a.kind == "downgrade":
        app.observe("downgrade", key=incident.key, level=incident.level, reason=a.reason)
    if drills.reaches_public(incident):  # a drill never leaves the office as CAP
        await publish_cap(app.store, app.settings, incident, a.kind, app.clock(), a.event_id)
    await app.store.followed_up(a.event_id, app.clock())


async def _opened(app: App, incident: Incident, reason: str, detail: Mapping[str, Any]) -> None:
    app.observe("opened", incident=incident, reason=reason)
    await app.notify(incident, exclude=frozenset(detail.get("exclude", ())))
    asked = sum(r.level == incident.level for r in await app.store.requests_of(incident.id))
    await app.alert_duty(incident.id, "opened", asked=asked)
    await app.send_tips(incident)


async def resume(app: App, after_s: float = RESUME_AFTER_S) -> int:
    """Follow up again every event left unfinished for ``after_s`` (a crash between the
    decision and its work, or a store outage mid-way); how many were resumed."""
    unfinished = await app.store.unfinished(app.clock() - timedelta(seconds=after_s))
    for a in unfinished:
        _log.warning("transition_resumed", event_id=a.event_id, kind=a.kind, incident=a.incident.id)
        await follow_up(app, a)
    return len(unfinished)
