"""Reference pages: feeds' health, roster counts and import errors, who is on duty now,
and the audit log (administrators)."""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from warnbot.console import boardview
from warnbot.console.keys import CONSOLE_STORE, PAGES, ROSTER_CHECK
from warnbot.console.session import Visitor, guard
from warnbot.model import Tier
from warnbot.web.keys import APP


@guard("viewer")
async def feeds(request: web.Request, v: Visitor) -> web.StreamResponse:
    app = request.app[APP]
    health = {h["name"]: h for h in await app.store.feed_health()}
    now = app.clock()
    rows = []
    for feed in app.settings.feeds:
        h = health.get(feed.name, {})
        last = h.get("last_success")
        failures = h.get("failures", 0) or 0
        silent = bool(
            feed.silent_after_s
            and (last is None or (now - last).total_seconds() > feed.silent_after_s)
        )
        state = "failing" if failures else "silent" if silent else "ok" if last else "waiting"
        rows.append({"feed": feed, "health": h, "state": state})
    return request.app[PAGES].response(v.language, "feeds.html", me=v, feeds=rows)


@guard("viewer")
async def rosters(request: web.Request, v: Visitor) -> web.StreamResponse:
    app = request.app[APP]
    people = list(app.people.values())
    per_tier = Counter(p.tier for p in people)
    per_region = Counter((p.tier, p.region_code) for p in people)
    regions = [
        {"tier": t, "code": c, "name": boardview.region_name(app.regions, c), "n": n}
        for (t, c), n in sorted(
            per_region.items(), key=lambda kv: (list(Tier).index(kv[0][0]), kv[0][1])
        )
    ]
    problems: list[str] = []
    if app.settings.roster is not None:
        check = request.app[ROSTER_CHECK]
        problems = await check.problems(app.settings.roster, app.settings.phone_region, app.regions)
    return request.app[PAGES].response(
        v.language,
        "rosters.html",
        me=v,
        total=len(people),
        tiers=[(t, per_tier.get(t, 0)) for t in Tier],
        regions=regions,
        problems=problems,
        source=app.settings.roster.name if app.settings.roster else "",
    )


@guard("viewer")
async def duty(request: web.Request, v: Visitor) -> web.StreamResponse:
    """Who is on duty now: the office's officer on shift in the duty rota, else the
    roster's duty officers (``App.duty_officers``, which escalations use too)."""
    app = request.app[APP]
    officers = [
        {
            "name": p.name,
            "region": boardview.region_name(app.regions, p.region_code),
            "phone": _mask(p.phones[0]),
        }
        for p in app.duty_officers(None)
    ]
    return request.app[PAGES].response(
        v.language, "duty.html", me=v, officers=officers, now=app.clock()
    )


@guard("admin")
async def audit(request: web.Request, v: Visitor) -> web.StreamResponse:
    entries = await request.app[CONSOLE_STORE].audit_log(300)
    return request.app[PAGES].response(v.language, "audit.html", me=v, entries=entries)


def _mask(phone: str) -> str:
    """+8617000000900 → +86170****0900: enough to recognise, not to copy."""
    return phone[:6] + "****" + phone[-4:] if len(phone) > 10 else phone
