"""What a duty officer can do, for the console and the JSON API alike; each action is
written to the audit log with who did it.

A manual response (手动启动响应) opens one incident per chosen region through the
same store and ``App.notify`` the feeds use, so its messages go through the
outbox and its 叫应 through the same ladder (``preview.py`` shows what confirming
would send, without writing anything).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from warnbot import drills, lifecycle, regions
from warnbot.app import App, reminder_codes
from warnbot.console import messages
from warnbot.evaluate import Transition, incident_key
from warnbot.model import Incident, Level, Message, Tier
from warnbot.plan import plan
from warnbot.store.accounts import ConsoleStore
from warnbot.store.ladder import OPEN

# Headline templates a duty officer can pick instead of writing free text.
HEADLINES = {
    "standard": "{region}{hazard}，启动{level}级应急响应",
    "transfer": "{region}{hazard}，启动{level}级应急响应，请立即组织危险区域人员转移",
    "patrol": "{region}{hazard}，启动{level}级应急响应，请加强巡查值守",
}
HIGH_LEVELS = (Level.I, Level.II)


class ActionError(ValueError):
    """A request the duty officer must correct. ``code`` names its message in
    ``messages.ERRORS``; ``str()`` is the text in Chinese, then English (the API's)."""

    def __init__(self, code: str, /, **params: str) -> None:
        self.code, self.params = code, params
        super().__init__(messages.both(code, **params))

    def text(self, language: str) -> str:
        """The message in the visitor's language."""
        return messages.text(language, self.code, **self.params)


@dataclass(frozen=True)
class Manual:
    """A manual response as asked for: regions, level, hazard, and the headline."""

    region_codes: tuple[str, ...]
    level: Level
    hazard: str
    template: str = "standard"
    text: str = ""  # free text; when given it is the headline
    drill: bool = False

    def headline(self, app: App, code: str) -> str:
        if self.text.strip():
            return self.text.strip()
        pattern = HEADLINES.get(self.template, HEADLINES["standard"])
        name = app.regions.get(code).name if app.regions and code in app.regions else code
        return pattern.format(region=name, hazard=self.hazard, level=self.level.roman)


def check(app: App, m: Manual) -> None:
    """Refuse what cannot be sent: no region, an unknown region, no hazard, overlong text."""
    if not m.region_codes:
        raise ActionError("choose_region")
    for code in m.region_codes:
        if not regions.is_code(code) or (app.regions is not None and code not in app.regions):
            raise ActionError("unknown_region", region=repr(code))
    if not m.hazard.strip() or len(m.hazard) > 50:
        raise ActionError("hazard")
    if len(m.text) > 500:
        raise ActionError("text_too_long")
    if m.template not in HEADLINES:
        raise ActionError("unknown_template", name=repr(m.template))


def draft(app: App, m: Manual, code: str, source: str) -> Incident:
    key = incident_key(m.hazard.strip(), code)
    return Incident(
        id=0,
        key=drills.manual_key(key) if m.drill else key,
        hazard=m.hazard.strip(),
        region_code=regions.canonical(code),
        level=m.level,
        status="open",
        opened_at=app.clock(),
        headline=m.headline(app, code),
        policy=app.settings.level_policy(m.level),
        drill=m.drill,
        source=source,
    )


@dataclass(frozen=True)
class Scope:
    """One incident a manual response opens, and who it leaves out because an
    incident before it in the same response asks them already."""

    draft: Incident
    asked_elsewhere: Mapping[str, str] = field(default_factory=dict)  # person → region code


@dataclass(frozen=True)
class Choice:
    """What the chosen regions come to: the incidents, and each region chosen inside
    another chosen one (inner, outer), covered by the outer one's incident."""

    scopes: list[Scope]
    merged: list[tuple[str, str]]


def choose(app: App, m: Manual, source: str) -> Choice:
    """One incident per chosen subtree, and nobody asked twice.

    A region chosen inside another chosen region (a village and its township) adds
    nothing: the outer incident covers it. Separate regions (several villages) get an
    incident each, and a person above them concerned by several (their township
    head, the county) is asked once, in the first of those incidents by region code.
    """
    codes = sorted({regions.canonical(c) for c in m.region_codes}, key=regions.prefix)
    kept: list[str] = []
    merged: list[tuple[str, str]] = []
    for code in codes:  # parents sort before their children
        outer = next((k for k in kept if regions.contains(k, code)), None)
        if outer is None:
            kept.append(code)
        else:
            merged.append((code, outer))
    asked: dict[str, str] = {}
    chosen = []
    for code in kept:
        d = draft(app, m, code, source)
        keys = [x.responder.key for x in plan(d, app.people.values(), "", app.clock())]
        chosen.append(Scope(d, {k: asked[k] for k in keys if k in asked}))
        asked.update({k: code for k in keys if k not in asked})
    return Choice(chosen, merged)


def scopes(app: App, m: Manual, source: str) -> list[Scope]:
    """The incidents manual response ``m`` opens (see ``choose``)."""
    return choose(app, m, source).scopes


async def open_manual(
    app: App, audit: ConsoleStore, m: Manual, actor: str, via: str = "console"
) -> list[Incident]:
    """Open one incident per chosen subtree and ask its people, each once (``choose``);
    a region whose incident of this hazard is already open is refused as a whole,
    before anything is sent. ``via`` (console, api) names the incidents' source."""
    check(app, m)
    source = f"{via}:{actor}"
    chosen = scopes(app, m, source)
    drafts = [s.draft for s in chosen]
    open_keys = {i.key for i, _ in await app.store.open_incidents()}
    clash = [d.key for d in drafts if d.key in open_keys]
    if clash:
        raise ActionError("already_open", keys=", ".join(clash))
    reason = f"手动启动 manual response ({actor})"
    excluded = {c.draft.key: sorted(c.asked_elsewhere) for c in chosen}
    opened = await lifecycle.open_drafts(app, drafts, reason, source, excluded)
    for incident in opened:
        await audit.audit(
            actor,
            "manual_open",
            app.clock(),
            target=f"incident:{incident.id}",
            detail=f"{incident.level.roman}级 {incident.hazard} {incident.region_code} "
            f"drill={incident.drill}: {incident.headline}",
            via=via,
        )
    return opened


async def lift(
    app: App, audit: ConsoleStore, incident_id: int, reason: str, actor: str, via: str = "console"
) -> None:
    incident = await _open_incident(app, incident_id)
    reason = _reason(reason)
    await _apply(app, incident, "lift", incident.level, reason, actor, via)
    target = f"incident:{incident_id}"
    await audit.audit(actor, "lift", app.clock(), target=target, detail=reason, via=via)


async def upgrade(
    app: App,
    audit: ConsoleStore,
    incident_id: int,
    level: Level,
    reason: str,
    actor: str,
    via: str = "console",
) -> None:
    incident, reason = await check_upgrade(app, incident_id, level, reason)
    await _apply(app, incident, "upgrade", level, reason, actor, via)
    await audit.audit(
        actor,
        "upgrade",
        app.clock(),
        target=f"incident:{incident_id}",
        detail=f"{incident.level.roman}→{level.roman}: {reason}",
        via=via,
    )


async def check_upgrade(
    app: App, incident_id: int, level: Level, reason: str
) -> tuple[Incident, str]:
    """The open incident and the reason, or ActionError: lifted, no reason, not higher."""
    incident = await _open_incident(app, incident_id)
    reason = _reason(reason)
    if not level.outranks(incident.level):
        raise ActionError("higher_only")
    return incident, reason


def asked_at(app: App, incident: Incident, level: Level) -> int:
    """How many people an upgrade of ``incident`` to ``level`` asks again."""
    raised = dataclasses.replace(incident, level=level, policy=app.settings.level_policy(level))
    return len(plan(raised, app.people.values(), app.settings.sms_channel, app.clock()))


async def remind_silent(
    app: App, audit: ConsoleStore, incident_id: int, actor: str, via: str = "console"
) -> int:
    """Ask everyone silent (past the window, unanswered, not superseded by an upgrade)
    again now, each showing the code the ladder's reminder would (``reminder_codes``);
    returns how many."""
    incident = await _open_incident(app, incident_id)
    now = app.clock()
    silent = [
        r
        for r in await app.store.requests_of(incident_id)
        if r.status in OPEN
        and r.confirmed_at is None
        and r.deadline < now
        and r.responder_key in app.people
    ]
    waiting = {r.id: r for r, _ in await app.store.pending()} | {r.id: r for r in silent}
    codes = reminder_codes(waiting.values())
    stamp = int(time.time())
    channel = app.settings.sms_channel
    messages = []
    for r in silent:
        person = app.people[r.responder_key]
        body = app._sms(  # as the ladder's reminder is made
            person, "repeat", incident, code=codes[r.id], n=1, link=app.link(r.id)
        )
        key = f"remind:{r.id}:{stamp}:{channel}"
        messages.append(
            Message(
                key,
                channel,
                person.phones[0],
                body,
                incident_id,
                person.key,
                ack_token=app.token(r.id),
            )
        )
    await app.store.enqueue(messages, now)
    target = f"incident:{incident_id}"
    await audit.audit(actor, "remind_silent", now, target, f"{len(messages)}", via=via)
    return len(messages)


async def phone_ack(
    app: App,
    audit: ConsoleStore,
    incident_id: int,
    request_id: int,
    note: str,
    actor: str,
    via: str = "console",
) -> bool:
    """Record that a person confirmed by telephone to the duty officer ``actor``;
    False when they had already confirmed. A lifted incident takes no more answers,
    and an answer the intake could not record is an error, not a repeat."""
    await _open_incident(app, incident_id)
    req = await app.store.request(request_id)
    if req is None or req.incident_id != incident_id:
        raise ActionError("no_request")
    # the ack itself carries the officer's name and note, as `warnbot ack --by` does
    outcome = await app.duty_ack(incident_id, req.responder_key, actor, note[:200])
    if outcome.kind not in ("confirmed", "duplicate"):
        raise ActionError("nothing_recorded")
    new = outcome.kind == "confirmed"
    person = app.people.get(req.responder_key)
    await audit.audit(
        actor,
        "phone_ack" if new else "phone_ack_duplicate",
        app.clock(),
        target=f"incident:{incident_id}",
        detail=f"{person.name if person else req.responder_key} ({req.tier.value}) {note[:200]}",
        via=via,
    )
    return new


async def _open_incident(app: App, incident_id: int) -> Incident:
    incident = await app.store.incident(incident_id)
    if incident is None:
        raise ActionError("no_incident")
    if incident.status != "open":
        raise ActionError("lifted")
    return incident


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ActionError("reason")
    return reason[:500]


async def _apply(
    app: App, incident: Incident, kind: str, level: Level, reason: str, actor: str, via: str
) -> None:
    """Apply a transition by hand; its event names ``via:actor`` as its source."""
    await app.apply(_transition(kind, incident, level, reason, actor), None, f"{via}:{actor}")


def _transition(kind: str, incident: Incident, level: Level, reason: str, actor: str) -> Transition:
    return Transition(
        kind=kind,
        key=incident.key,
        hazard=incident.hazard,
        region_code=incident.region_code,
        level=level,
        headline=incident.headline,
        reason=f"{reason} ({actor})",
        incident_id=incident.id,
    )


def tiers_of(level: Level, app: App) -> list[Tier]:
    return list(app.settings.level_policy(level).tiers)
