"""Exports of the console: one incident's people as on the board (CSV), its drill or
after-action report from ``drillreport`` (HTML, per person and per tier CSV), and
one row per incident from the same report (CSV).

Every text cell goes through ``warnbot.csvcells``: a name, hazard or headline typed
as ``=HYPERLINK(…)`` reaches a spreadsheet as text, never as a formula; the drill
report's CSV is written by the same ``table``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from warnbot import drillreport
from warnbot.app import App
from warnbot.console.incidents import board_of, incident_or_404
from warnbot.console.keys import CONSOLE_STORE
from warnbot.console.session import Visitor, guard
from warnbot.console.views import HEADERS
from warnbot.csvcells import table
from warnbot.drillcli import load_report
from warnbot.model import Incident
from warnbot.store.accounts import ConsoleStore
from warnbot.web.keys import APP


def attachment(text: str, name: str) -> web.Response:
    return web.Response(
        body=("\ufeff" + text).encode(),  # BOM: spreadsheet programs then read UTF-8
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


PEOPLE_HEADER = (
    "incident",
    "level",
    "hazard",
    "drill",
    "responder_key",
    "name",
    "tier",
    "region_code",
    "region",
    "state",
    "channel",
    "time",
    "deadline",
    "escalated",
)


@guard("viewer")
async def export_csv(request: web.Request, v: Visitor) -> web.StreamResponse:
    """One row per person asked: who, tier, region, state, how and when they answered."""
    app = request.app[APP]
    store = request.app[CONSOLE_STORE]
    incident = await incident_or_404(app, request)
    view = await board_of(app, store, incident)
    rows = [
        [
            incident.id,
            incident.level.roman,
            incident.hazard,
            incident.drill,
            r.responder_key,
            r.name,
            r.tier.value,
            r.region_code,
            r.region_name,
            r.state,
            r.channel,
            r.time.isoformat(),
            r.deadline.isoformat(),
            r.escalated,
        ]
        for r in view.rows
    ]
    await store.audit(v.name, "export_csv", app.clock(), target=f"incident:{incident.id}")
    name = f"incident-{incident.id}{'-drill' if incident.drill else ''}.csv"
    return attachment(table(PEOPLE_HEADER, rows), name)


# --- reports (drillreport.py): one incident, or one row per incident ------------------------

# The report page is self-contained (its own <style>), scripts none at all.
REPORT_PAGE_HEADERS = {
    **HEADERS,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}
REPORT_FORMATS = ("html", "csv", "tiers.csv")


@guard("viewer")
async def incident_report(request: web.Request, v: Visitor) -> web.StreamResponse:
    """The drill (or after-action) report of one incident, as ``warnbot drill report``
    makes it: per person and per tier (median and slowest time to confirm, outcomes,
    escalations), as an HTML page or CSV."""
    app = request.app[APP]
    incident = await incident_or_404(app, request)
    fmt = request.match_info["format"]
    if fmt not in REPORT_FORMATS:
        raise web.HTTPNotFound()
    report = await load_report(app.store, incident.id, app.clock())
    if report is None:
        raise web.HTTPNotFound()
    target = f"incident:{incident.id}"
    await request.app[CONSOLE_STORE].audit(v.name, "export_report", app.clock(), target, fmt)
    if fmt == "html":
        page = drillreport.html(report, ZoneInfo(app.settings.console.timezone))
        return web.Response(
            text=page, content_type="text/html", charset="utf-8", headers=REPORT_PAGE_HEADERS
        )
    stem = f"{'drill' if incident.drill else 'incident'}-{incident.id}-report"
    if fmt == "csv":
        return attachment(drillreport.people_csv(report), f"{stem}.csv")
    return attachment(drillreport.tiers_csv(report), f"{stem}-tiers.csv")


REPORT_HEADER = (
    "incident",
    "level",
    "hazard",
    "region_code",
    "drill",
    "source",
    "opened_at",
    "lifted_at",
    "asked",
    *drillreport.OUTCOMES,
    "answered_pct",
    "median_confirm_s",
    "max_confirm_s",
    "escalations",
)
BATCH = 200  # incidents read together


@guard("viewer")
async def export_all_csv(request: web.Request, v: Visitor) -> web.StreamResponse:
    """After-action and drill report: one row per incident with its 叫应 outcome, from
    the same ``drillreport`` as each incident's report; ``?drill=1`` keeps only drills.
    Incidents are read in batches, a few queries per batch."""
    app = request.app[APP]
    store = request.app[CONSOLE_STORE]
    drills_only = request.query.get("drill") == "1"
    listed = [
        (i, lifted)
        for i, lifted in await store.incidents(limit=10_000)
        if i.drill or not drills_only
    ]
    rows = []
    for start in range(0, len(listed), BATCH):
        batch = listed[start : start + BATCH]
        built = await reports_of(app, store, [i for i, _ in batch])
        rows += [_report_row(r, lifted) for r, (_, lifted) in zip(built, batch, strict=True)]
    await store.audit(v.name, "export_report_csv", app.clock(), detail=f"drill_only={drills_only}")
    name = "drill-report.csv" if drills_only else "after-action-report.csv"
    return attachment(table(REPORT_HEADER, rows), name)


async def reports_of(
    app: App, store: ConsoleStore, incidents: Sequence[Incident]
) -> list[drillreport.DrillReport]:
    """``drillreport.build`` for each incident, from four reads for them all (the same
    inputs ``drillcli.load_report`` reads for one)."""
    ids = [i.id for i in incidents]
    asked = await store.requests_of_many(ids)
    steps = await store.fired_steps_of_many(ids)
    keys = {r.responder_key for rs in asked.values() for r in rs}
    people = await app.store.people_by_key(keys)
    failures = await store.failures_of(keys)
    built = []
    for incident in incidents:
        failed: dict[str, set[str]] = {}
        for key, address, at in failures:
            if at >= incident.opened_at:
                failed.setdefault(key, set()).add(address)
        unreachable = drillreport.unreachable_keys(people, failed)
        built.append(
            drillreport.build(
                incident,
                asked.get(incident.id, []),
                people,
                steps.get(incident.id, []),
                app.clock(),
                unreachable,
            )
        )
    return built


def _report_row(report: drillreport.DrillReport, lifted: datetime | None) -> list[Any]:
    i, total = report.incident, report.total
    return [
        i.id,
        i.level.roman,
        i.hazard,
        i.region_code,
        i.drill,
        i.source,
        i.opened_at.isoformat(),
        lifted.isoformat() if lifted else "",
        total.total if total else 0,
        *(total.counts[o] if total else 0 for o in drillreport.OUTCOMES),
        f"{100 * total.rate:.1f}" if total else "",
        _seconds(total.median_confirm_s if total else None),
        _seconds(total.max_confirm_s if total else None),
        sum(total.escalations.values()) if total else 0,
    ]


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"
