"""Incident pages: the list, one incident (map, chart, live ack board, timeline, actions)
and the board's server-sent events. Exports are in ``exports.py``."""

from __future__ import annotations

import contextlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from warnbot import board
from warnbot.app import App
from warnbot.console import auth, boardview, messages, svg
from warnbot.console.boards import BoardKey, Render
from warnbot.console.keys import BOARDS, CONSOLE_STORE, PAGES
from warnbot.console.session import Visitor, guard
from warnbot.model import Incident, Level
from warnbot.store.accounts import Account, ConsoleStore
from warnbot.store.events import IncidentEvent
from warnbot.web.keys import APP

KEEPALIVE_S = 15.0


@guard("viewer")
async def index(request: web.Request, v: Visitor) -> web.StreamResponse:
    app = request.app[APP]
    rows = await request.app[CONSOLE_STORE].incidents()
    now = app.clock()
    listed = [
        {
            "incident": i,
            "lifted_at": lifted,
            "region": boardview.region_name(app.regions, i.region_code),
            "age_min": int((now - i.opened_at).total_seconds() // 60),
        }
        for i, lifted in rows
    ]
    return request.app[PAGES].response(v.language, "incidents.html", me=v, incidents=listed)


async def incident_or_404(app: App, request: web.Request) -> Incident:
    try:
        incident_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    incident = await app.store.incident(incident_id)
    if incident is None:
        raise web.HTTPNotFound()
    return incident


async def board_of(app: App, store: ConsoleStore, incident: Incident) -> boardview.BoardView:
    requests = await app.store.requests_of(incident.id)
    failures = await store.failed_addresses_of(r.responder_key for r in requests)
    return boardview.build(
        requests,
        app.people,
        await store.acks_of(incident.id),
        await store.messages_of(incident.id),
        failures,
        app.regions,
        app.clock(),
    )


@dataclass(frozen=True)
class Live:
    """Everything on the page that the board stream redraws."""

    incident: Incident
    view: boardview.BoardView
    rows: list[boardview.PersonRow]
    map: svg.RegionMap | None
    chart: svg.Chart | None
    only: str | None


async def live(app: App, store: ConsoleStore, incident_id: int, only: str | None) -> Live:
    incident = await app.store.incident(incident_id)
    if incident is None:
        raise web.HTTPNotFound()
    view = await board_of(app, store, incident)
    tallies = {g.label: (g.answered, g.total) for g in view.regions}
    requests = await app.store.requests_of(incident_id)
    return Live(
        incident,
        view,
        boardview.only(view, only),
        svg.region_map(app.regions, incident.region_code, tallies),
        svg.confirmation_chart(board.asked(requests), incident.opened_at, app.clock()),
        only,
    )


def _only(request: web.Request) -> str | None:
    value = request.query.get("only")
    return value if value in boardview.STATES else None


@guard("viewer")
async def detail(request: web.Request, v: Visitor) -> web.StreamResponse:
    app = request.app[APP]
    store = request.app[CONSOLE_STORE]
    incident = await incident_or_404(app, request)
    return request.app[PAGES].response(
        v.language,
        "incident.html",
        me=v,
        live=await live(app, store, incident.id, _only(request)),
        timeline=await timeline(app, store, incident),
        higher=[lv for lv in Level if lv.outranks(incident.level)],
        error=_error(request, v.language),
        notice=_notice(request),
    )


def _error(request: web.Request, language: str) -> str:
    """The text of the ``?error=`` code, from the fixed table; never the query's own text."""
    code = request.query.get("error", "")
    return messages.text(language, code) if messages.redirectable(code) else ""


NOTICES = frozenset({"lifted", "upgraded", "phone_ack", "reminded"})


def _notice(request: web.Request) -> tuple[str, int]:
    """``?notice=`` as (a known notice, its count): ``reminded:9`` → ("reminded", 9)."""
    name, _, count = request.query.get("notice", "").partition(":")
    counted = count.isascii() and count.isdigit() and len(count) < 9
    if name not in NOTICES or (name == "reminded") != counted:
        return "", 0
    return name, int(count) if counted else 0


@guard("viewer")
async def events(request: web.Request, v: Visitor) -> web.StreamResponse:
    """Server-sent events: ``board`` with the redrawn live section whenever it changes,
    from the render every stream of the same board shares (``boards.py``)."""
    incident = await incident_or_404(request.app[APP], request)
    can_act = v.account is not None and auth.allows(v.account.role, "duty_officer")
    key = BoardKey(incident.id, _only(request), v.language, can_act)
    stream = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await stream.prepare(request)
    with contextlib.suppress(ConnectionResetError):  # the browser went away
        async with contextlib.aclosing(request.app[BOARDS].watch(key, KEEPALIVE_S)) as updates:
            async for html in updates:
                if html is None:
                    await stream.write(b": keepalive\n\n")
                    continue
                mine = html.replace(CSRF_SLOT, v.csrf)  # each session's own token
                await stream.write(f"event: board\ndata: {json.dumps({'html': mine})}\n\n".encode())
    return stream


# Stands for the session's CSRF token in a shared render; each stream puts its own in.
CSRF_SLOT = "csrf-slot-" + secrets.token_urlsafe(12)


def board_renderer(web_app: web.Application) -> Render:
    """How ``Boards`` draws a board: the live section for a stand-in visitor of the
    key's language and role, with ``CSRF_SLOT`` where the token goes."""

    async def render(key: BoardKey) -> str:
        role = "duty_officer" if key.can_act else "viewer"
        shown = Visitor(Account(0, "", role, ""), CSRF_SLOT, key.language)
        app, store = web_app[APP], web_app[CONSOLE_STORE]
        drawn = await live(app, store, key.incident_id, key.only)
        return web_app[PAGES].render(key.language, "_live.html", me=shown, live=drawn)

    return render


# --- the timeline ------------------------------------------------------------------------------


# Audit actions that are transitions: the incident's events carry them, with their source.
_TRANSITION_ACTIONS = frozenset({"manual_open", "upgrade", "lift"})


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # open, upgrade, update, downgrade, lift, sent, confirmed, escalated_*, actions
    text: str
    path: str = ""  # how a confirmation came
    source: str = ""  # who or what caused a transition: a feed, expiry, console:NAME, api:NAME


async def timeline(app: App, store: ConsoleStore, incident: Incident) -> list[Event]:
    """Transitions (opened, upgraded, updated, downgraded, lifted — by feeds, expiry or
    hand), actions (reminders, phone confirmations), messages sent (per channel and
    minute), confirmations and ladder steps; oldest first."""
    recorded = await app.store.incident_events(incident.id)
    events = [_transition_event(e) for e in recorded]
    kinds = {e.kind for e in recorded}
    if "open" not in kinds:  # an incident from before events were recorded
        opened = f"{incident.level.roman} {incident.headline}"
        events.append(Event(incident.opened_at, "open", opened))
    for a in await store.audit_log(500, target=f"incident:{incident.id}"):
        if not (recorded and a.action in _TRANSITION_ACTIONS):
            events.append(Event(a.at, a.action, f"{a.actor}: {a.detail}"))
    events += _sent(await store.messages_of(incident.id))
    requests = {r.id: r for r in await app.store.requests_of(incident.id)}
    for ack in await store.acks_of(incident.id):
        req = requests.get(ack.request_id)
        who = app.people[req.responder_key].name if req and req.responder_key in app.people else "?"
        events.append(Event(ack.received_at, "late" if ack.late else "confirmed", who, ack.path))
    for key, kind, at in await store.escalations_of(incident.id):
        events.append(Event(at, f"escalated_{kind}", _step_subject(key, requests, app)))
    lifted = await store.lifted_at(incident.id)
    if lifted is not None and "lift" not in kinds:
        events.append(Event(lifted, "lift", ""))
    return sorted(events, key=lambda e: (e.at, e.kind != "open", e.kind == "lift"))


def _transition_event(e: IncidentEvent) -> Event:
    if e.kind in ("upgrade", "downgrade") and e.previous_level is not None:
        levels = f"{e.previous_level.roman}→{e.level.roman}"
    else:
        levels = e.level.roman
    return Event(e.at, e.kind, f"{levels} {e.reason}", source=e.source)


def _step_subject(key: str, requests: dict[int, Any], app: App) -> str:
    """Whose ladder step a key names (keys read ``kind:request_id[:n]``); else the key."""
    parts = key.split(":")
    req = requests.get(int(parts[1])) if len(parts) > 1 and parts[1].isdigit() else None
    if req is None or req.responder_key not in app.people:
        return key
    return app.people[req.responder_key].name


def _sent(messages: list[Any]) -> list[Event]:
    counted: dict[tuple[str, str], list[datetime]] = {}
    for m in messages:
        if m.sent_at is not None:
            counted.setdefault((m.channel, m.sent_at.strftime("%Y%m%d%H%M")), []).append(m.sent_at)
    return [
        Event(min(times), "sent", f"{channel} × {len(times)}")
        for (channel, _), times in counted.items()
    ]
