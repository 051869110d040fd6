"""One open incident per hazard and region, however decisions race: two gauge feeds
crossing one rule at once open it once, and an open that lost the race to a lower level
upgrades the winner instead of asking everyone a second time."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import DEMO, T0, Clock
from tests.factories import incident
from tests.test_feeds_live import RULE
from tests.test_migration_0004 import downgrade_to, empty
from warnbot.app import App
from warnbot.console import actions
from warnbot.console.actions import Manual
from warnbot.ingest import cap
from warnbot.model import Level, Observation
from warnbot.store import Store, db
from warnbot.store.accounts import ConsoleStore
from warnbot.store.incidents import Change

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()


def _reading(station: str, value: float, at: datetime) -> Observation:
    return Observation(station, "water_level", value, "m", at, region_code="449901001")


@pytest.fixture
def gauged(app: App, clock: Clock) -> App:
    clock.now = T0.replace(hour=6, minute=30)
    app.settings = app.settings.model_copy(update={"rules": [RULE]})
    real = app.store.open_incidents

    async def slow() -> list:  # type: ignore[type-arg]
        found = await real()
        await asyncio.sleep(0.1)  # both evaluations decide before either applies
        return found

    app.store.open_incidents = slow  # type: ignore[method-assign]
    return app


async def test_two_feeds_crossing_one_rule_at_once_open_one_incident(gauged: App) -> None:
    at = gauged.clock() - timedelta(minutes=1)
    await asyncio.gather(
        gauged.ingest_observations("gauge-a", [_reading("st-a", 5.5, at)]),
        gauged.ingest_observations("gauge-b", [_reading("st-b", 5.6, at)]),
    )
    ((incident, _),) = await gauged.store.open_incidents()
    asked = [r.responder_key for r in await gauged.store.requests_of(incident.id)]
    assert len(asked) == len(set(asked)) > 0  # everyone asked once


async def test_an_open_that_lost_the_race_to_a_lower_level_upgrades_the_winner(
    store: Store,
) -> None:
    def opening(level: Level) -> Change:
        return Change("open", level, "reading", "gauge", draft=incident(T0, level))

    (won,) = await store.apply_changes([opening(Level.III)], T0) or []
    (late,) = await store.apply_changes([opening(Level.II)], T0) or []
    assert (late.kind, late.incident.id, late.incident.level) == (
        "upgrade",
        won.incident.id,
        Level.II,
    )
    assert await store.apply_changes([opening(Level.IV)], T0) == []  # asks for less: nothing
    assert [i.level for i, _ in await store.open_incidents()] == [Level.II]


async def test_0013_keeps_twins_opened_before_it_open_under_a_key_of_their_own(
    db_url: str,
) -> None:
    engine = db.create_engine(db_url)
    try:
        await db.migrate(engine)
        await empty(engine)
        await downgrade_to(engine, "0012")
        async with engine.begin() as conn:
            for incident_id in (3, 5):
                await conn.execute(
                    sa.text(
                        "INSERT INTO incidents (id, key, hazard, region_code, level, status,"
                        " headline, policy, drill, source, opened_at) VALUES (:id, '洪水@449901',"
                        " '洪水', '449901', 3, 'open', 'h', '{}', false, 't', :t)"
                    ),
                    {"id": incident_id, "t": T0},
                )
        await db.migrate(engine)
        async with engine.connect() as conn:
            keys = (await conn.execute(sa.text("SELECT id, key FROM incidents ORDER BY id"))).all()
        assert [tuple(k) for k in keys] == [(3, "洪水@449901"), (5, "洪水@449901#5")]
    finally:
        await empty(engine)
        await engine.dispose()


async def test_a_real_warning_during_a_manual_drill_opens_a_real_incident_beside_it(
    app: App,
) -> None:
    """The drill, opened by hand for the very hazard and region the warning is for,
    is neither upgraded by the warning nor in its way: two incidents, one a drill."""
    drill = Manual(("449901",), Level.III, "暴雨", drill=True)
    (drilled,) = await actions.open_manual(app, ConsoleStore(app.store.engine), drill, "值班员")
    await app.ingest("demo", cap.parse(FEED))
    opened = {i.id: i for i, _ in await app.store.open_incidents()}
    real = next(i for i in opened.values() if not i.drill)
    assert opened[drilled.id].level == Level.III and opened[drilled.id].drill
    assert real.level == Level.II and real.id != drilled.id


async def test_readings_stored_before_a_store_error_are_decided_on_by_the_resume_job(
    app: App, clock: Clock
) -> None:
    clock.now = T0.replace(hour=6, minute=30)
    app.settings = app.settings.model_copy(update={"rules": [RULE]})
    readings = [_reading("st-a", 5.5, clock.now - timedelta(minutes=1))]
    real = app.store.open_incidents

    async def outage() -> list:  # type: ignore[type-arg]
        raise ConnectionError("store unreachable")

    app.store.open_incidents = outage  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await app.ingest_observations("gauge-a", readings)  # stored, not decided
    app.store.open_incidents = real  # type: ignore[method-assign]
    assert await app.store.open_incidents() == []
    await app.resume_unfinished()
    ((incident, _),) = await app.store.open_incidents()
    assert incident.level == Level.III and not app.readings_unsettled
    assert await app.ingest_observations("gauge-a", readings) == []  # seen: nothing to do


async def test_an_upgrade_a_racing_decision_already_made_is_not_applied_twice(
    store: Store,
) -> None:
    (opened,) = (
        await store.apply_changes(
            [Change("open", Level.III, "r", "gauge", draft=incident(T0, Level.III))], T0
        )
        or []
    )
    up = Change("upgrade", Level.II, "r", "gauge", opened.incident.id)
    assert [a.kind for a in await store.apply_changes([up], T0) or []] == ["upgrade"]
    assert await store.apply_changes([up], T0) == []
    down = Change("downgrade", Level.II, "r", "gauge", opened.incident.id)
    assert await store.apply_changes([down], T0) == []
