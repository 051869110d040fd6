"""Incident events: every transition recorded with its reason and source, the timeline
built from them (feed-driven and by hand alike), and migration 0010 up and down."""

from __future__ import annotations

import dataclasses
import html
import re

import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from alembic import command

from tests.conftest import DEMO
from tests.console_helpers import MANUAL
from warnbot.app import App
from warnbot.evaluate import Transition
from warnbot.ingest import cap
from warnbot.model import Colour, Incident, Level
from warnbot.store import Store, db

pytest_plugins = ("tests.console_fixtures",)

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()


def _timeline(page: str) -> list[tuple[str, str]]:
    """(kind, text) of each timeline entry, without its time and tags."""
    items = re.findall(r'<li class="ev-[\w]+" data-event="(\w+)">(.*?)</li>', page, re.S)
    untimed = [(k, re.sub(r"<time>.*?</time>", "", t)) for k, t in items]
    return [(k, html.unescape(re.sub(r"<[^>]+>", "", t)).strip()) for k, t in untimed]


async def test_each_transition_is_recorded_once_with_the_level_before_it(app: App) -> None:
    warning = cap.parse(FEED)
    await app.ingest("demo", warning)
    (incident, _), *_ = await app.store.open_incidents()
    red = dataclasses.replace(warning, identifier=warning.identifier + "r", colour=Colour.RED)
    await app.ingest("demo", red)
    await app.ingest("demo", red)  # seen before: nothing new
    await app.apply(_by_hand("lift", incident, "雨停"), None, "console:张三")
    await app.apply(_by_hand("lift", incident, "again"), None, "console:李四")  # lifted: no-op
    events = await app.store.incident_events(incident.id)
    assert [(e.kind, e.level, e.previous_level, e.source) for e in events] == [
        ("open", Level.II, None, "demo"),
        ("upgrade", Level.I, Level.II, "demo"),
        ("lift", Level.I, Level.I, "console:张三"),
    ]


def _by_hand(kind: str, incident: Incident, reason: str) -> Transition:
    level = Level.I
    return Transition(
        kind, incident.key, incident.hazard, incident.region_code, level, "", reason, incident.id
    )


async def test_the_timeline_shows_each_transition_by_hand_with_reason_and_source(
    app: App, client: TestClient, officer: str
) -> None:
    form = {**MANUAL, "csrf": officer}
    opened = await client.post("/respond/confirm", data=form, allow_redirects=False)
    incident_id = int(opened.headers["Location"].rsplit("/", 1)[1])
    upgrade = {"csrf": officer, "level": "II", "reason": "雨势加大", "second": "yes"}
    await client.post(f"/incidents/{incident_id}/upgrade", data=upgrade)
    await client.post(f"/incidents/{incident_id}/lift", data={"csrf": officer, "reason": "雨停"})
    entries = _timeline(await (await client.get(f"/incidents/{incident_id}")).text())
    transitions = [(k, t) for k, t in entries if k in ("open", "upgrade", "lift")]
    assert transitions == [
        ("open", "启动 Ⅲ 手动启动 manual response (值班员张三) · 来源：console:值班员张三"),
        ("upgrade", "提升 Ⅲ→Ⅱ 雨势加大 (值班员张三) · 来源：console:值班员张三"),
        ("lift", "已解除 Ⅱ 雨停 (值班员张三) · 来源：console:值班员张三"),
    ]
    assert not [k for k, _ in entries if k == "manual_open"]  # not twice, from the audit log


async def test_a_feed_driven_upgrade_shows_in_the_timeline(
    app: App, client: TestClient, officer: str
) -> None:
    warning = cap.parse(FEED)
    await app.ingest("示例县气象台 demo CAP", warning)
    red = dataclasses.replace(warning, identifier=warning.identifier + "r", colour=Colour.RED)
    await app.ingest("示例县气象台 demo CAP", red)
    (incident, _), *_ = await app.store.open_incidents()
    entries = _timeline(await (await client.get(f"/incidents/{incident.id}")).text())
    upgrades = [t for k, t in entries if k == "upgrade"]
    assert len(upgrades) == 1 and upgrades[0].startswith("提升 Ⅱ→Ⅰ")
    assert upgrades[0].endswith("来源：示例县气象台 demo CAP")


async def test_migration_0010_goes_down_and_up_again(db_url: str) -> None:
    engine = db.create_engine(db_url)
    try:
        await db.migrate(engine)
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(db.alembic_config(c), "0009"))
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in sa.inspect(c).get_columns("api_tokens")}
            )
        added = {"incident_events", "sign_in_throttle", "metric_totals", "metric_marks"}
        assert not added & tables
        assert "revoked_at" not in columns
        await db.migrate(engine)
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert added <= tables
    finally:
        await engine.dispose()


async def test_migration_0010_creates_exactly_the_tables_the_code_reads(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from warnbot.store.tables import metadata

    async with store.engine.connect() as conn:
        diffs = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), metadata)
        )
    mine = (
        "incident_events",
        "sign_in_throttle",
        "api_tokens",
        "console_audit",
        "metric_totals",
        "metric_marks",
    )
    assert [d for d in diffs if any(f"'{t}'" in str(d) for t in mine)] == []
