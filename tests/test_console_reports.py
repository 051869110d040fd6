"""The console's reports come from warnbot/drillreport.py: each incident's report page
and CSVs (per person, per tier), and the one-row-per-incident CSV built from the same
report with a few queries for any number of incidents."""

from __future__ import annotations

import csv
import io
from typing import Any

import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from tests.conftest import Clock
from tests.console_helpers import confirm_by_link, open_manual
from warnbot.app import App
from warnbot.drillcli import load_report

pytest_plugins = ("tests.console_fixtures",)


def _rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def test_an_incidents_report_is_the_drill_report_as_a_page_and_two_csvs(
    app: App, client: TestClient, officer: str, clock: Clock
) -> None:
    incident_id = await open_manual(client, officer, drill="on")
    clock.advance(30)
    await confirm_by_link(app, incident_id, "V01")
    clock.advance(60)
    await confirm_by_link(app, incident_id, "T01")
    detail = await (await client.get(f"/incidents/{incident_id}")).text()
    assert f'href="/incidents/{incident_id}/report.html"' in detail and "演练报告" in detail
    page = await client.get(f"/incidents/{incident_id}/report.html")
    assert page.status == 200 and "【演练】演练报告" in await page.text()
    assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'none'
    tiers = _rows(await (await client.get(f"/incidents/{incident_id}/report.tiers.csv")).read())
    by_tier = {r["层级 tier"]: r for r in tiers}
    assert by_tier["village"]["中位用时(秒) median s"] == "30"
    assert by_tier["township"]["中位用时(秒) median s"] == "90"
    assert by_tier["all"]["人数 total"] == "10"
    people = _rows(await (await client.get(f"/incidents/{incident_id}/report.csv")).read())
    assert len(people) == 10
    assert (await client.get(f"/incidents/{incident_id}/report.pdf")).status == 404


async def test_the_one_row_per_incident_csv_agrees_with_each_incidents_report(
    app: App, client: TestClient, officer: str, clock: Clock
) -> None:
    first = await open_manual(client, officer)
    second = await open_manual(client, officer, hazard="台风", drill="on")
    clock.advance(20)
    await confirm_by_link(app, first, "V01")
    await confirm_by_link(app, second, "X01")
    clock.advance(100)  # past Level Ⅲ's 60 s window: the rest are silent
    exported = await (await client.get("/exports/incidents.csv")).read()
    rows = {r["incident"]: r for r in _rows(exported)}
    for incident_id in (first, second):
        report = await load_report(app.store, incident_id, app.clock())
        assert report is not None and report.total is not None
        row = rows[str(incident_id)]
        assert int(row["asked"]) == report.total.total
        assert {o: int(row[o]) for o in report.total.counts} == dict(report.total.counts)
        assert row["median_confirm_s"] == f"{report.total.median_confirm_s:.0f}"
    assert rows[str(first)]["silent"] == "9" and rows[str(second)]["drill"] == "True"


async def test_the_one_row_per_incident_csv_reads_the_same_few_times_for_more_incidents(
    app: App, client: TestClient, officer: str
) -> None:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    async def export() -> int:
        statements.clear()
        sa.event.listen(app.store.engine.sync_engine, "before_cursor_execute", count)
        try:
            assert (await client.get("/exports/incidents.csv")).status == 200
        finally:
            sa.event.remove(app.store.engine.sync_engine, "before_cursor_execute", count)
        return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])

    for hazard in ("暴雨", "台风"):
        await open_manual(client, officer, hazard=hazard)
    two = await export()
    for hazard in ("洪水", "山洪", "大风"):
        await open_manual(client, officer, hazard=hazard)
    assert await export() == two
