"""CSV exports of the console: one incident's people (after-action), and one row per
incident (after-action and drill report).

Every text cell goes through ``safe``: a name, hazard or headline typed as
``=HYPERLINK(…)`` must reach a spreadsheet as text, never as a formula (OWASP
"CSV injection": cells starting with = + - @, tab or carriage return).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from warnbot.console import boardview
from warnbot.console.incidents import board_of, incident_or_404
from warnbot.console.keys import CONSOLE_STORE
from warnbot.console.session import Visitor, guard
from warnbot.web.keys import APP

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe(value: Any) -> Any:
    """A text cell a spreadsheet shows as text: a leading formula character is quoted."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text of ``header`` and ``rows``, every cell through ``safe``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([safe(cell) for cell in row] for row in rows)
    return out.getvalue()


def protect(text: str) -> str:
    """CSV text made by someone else (the drill report), its cells through ``safe``."""
    rows = list(csv.reader(io.StringIO(text)))
    return table(rows[0], rows[1:]) if rows else text


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
    "confirmed",
    "late",
    "pending",
    "silent",
    "unreachable",
    "median_confirm_s",
)


@guard("viewer")
async def export_all_csv(request: web.Request, v: Visitor) -> web.StreamResponse:
    """After-action and drill report: one row per incident with its 叫应 outcome;
    ``?drill=1`` keeps only drills."""
    app = request.app[APP]
    store = request.app[CONSOLE_STORE]
    drills_only = request.query.get("drill") == "1"
    rows = []
    for incident, lifted in await store.incidents(limit=10_000):
        if drills_only and not incident.drill:
            continue
        view = await board_of(app, store, incident)
        counts = view.total.counts
        requests = await app.store.requests_of(incident.id)
        delays = sorted(
            (r.confirmed_at - r.sent_at).total_seconds() for r in requests if r.confirmed_at
        )
        median = delays[len(delays) // 2] if delays else ""
        rows.append(
            [
                incident.id,
                incident.level.roman,
                incident.hazard,
                incident.region_code,
                incident.drill,
                incident.source,
                incident.opened_at.isoformat(),
                lifted.isoformat() if lifted else "",
                view.total.total,
                *(counts.get(s, 0) for s in boardview.STATES),
                median,
            ]
        )
    await store.audit(v.name, "export_report_csv", app.clock(), detail=f"drill_only={drills_only}")
    name = "drill-report.csv" if drills_only else "after-action-report.csv"
    return attachment(table(REPORT_HEADER, rows), name)
