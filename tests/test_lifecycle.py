"""Transitions are decided and stored first, then followed up; a crash in between
loses nothing and a resumed follow-up doubles nothing."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import DEMO, Clock
from warnbot import lifecycle
from warnbot.app import App
from warnbot.ingest import cap
from warnbot.model import Colour, Level
from warnbot.settings import CapSettings
from warnbot.store.incidents import Change
from warnbot.store.tables import cap_documents, incident_events, incidents, outbox, warnings

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()
AUDIENCE = {f"+8613800138{n:03d}": "449901001001" for n in range(40)}


class Crash(Exception):
    """The process dying at this point (nothing after it runs)."""


@contextmanager
def crash_at(app: App, method: str) -> Iterator[None]:
    """Make ``app.<method>`` die the next time it is called."""

    async def die(*args: Any, **kwargs: Any) -> Any:
        raise Crash(method)

    setattr(app, method, die)
    try:
        yield
    finally:
        delattr(app, method)  # the class's method again, as after a restart


@pytest.fixture
async def full(app: App) -> App:
    """The demo app that also tips a public audience and publishes CAP."""
    cap_settings = CapSettings(sender="warnbot.example.org", issuer_region="449901")
    app.settings = app.settings.model_copy(update={"tips_audience": "居民", "cap": cap_settings})
    await app.store.replace_audience("居民", AUDIENCE, "test", app.clock())
    return app


async def _keys(app: App) -> Counter[str]:
    async with app.store.engine.connect() as conn:
        return Counter((await conn.execute(sa.select(outbox.c.key))).scalars())


async def _count(app: App, table: sa.Table) -> int:
    async with app.store.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar())


async def _unfinished(app: App) -> int:
    query = sa.select(sa.func.count()).where(incident_events.c.done_at.is_(None))
    async with app.store.engine.connect() as conn:
        return int((await conn.execute(query)).scalar())


async def test_a_crash_after_the_decision_is_resumed_and_nobody_is_asked_twice(
    full: App, clock: Clock
) -> None:
    with crash_at(full, "send_tips"), pytest.raises(Crash):
        await full.ingest("demo", cap.parse(FEED))
    asked = await _keys(full)
    assert sum(k.startswith("request:") for k in asked) == 11  # the asks went out…
    assert not any(k.startswith("tip:") for k in asked)  # …the tips and CAP did not
    assert await _count(full, cap_documents) == 0 and await _unfinished(full) == 1

    assert await full.resume_unfinished() == 0  # too young: may still be in flight
    clock.advance(lifecycle.RESUME_AFTER_S + 1)
    assert await full.resume_unfinished() == 1
    after = await _keys(full)
    assert sum(k.startswith("tip:") for k in after) == len(AUDIENCE)
    assert {k: n for k, n in after.items() if k in asked} == asked  # nothing queued twice
    assert await _count(full, cap_documents) == 1 and await _unfinished(full) == 0
    assert await full.resume_unfinished() == 0


async def test_a_warning_whose_decision_failed_left_no_trace_and_is_taken_again(
    full: App,
) -> None:
    warning = cap.parse(FEED)
    bad = Change("reopen", Level.II, "a bug", "demo", incident_id=1)
    with pytest.raises(ValueError, match="unknown transition"):
        await full.store.apply_changes([bad], full.clock(), warning=("demo", warning))
    assert await _count(full, warnings) == 0  # rolled back with the failed change
    (t,) = await full.ingest("demo", warning)
    assert t.kind == "open" and await _count(full, incidents) == 1


async def test_a_lift_cut_short_tells_everyone_reached_once_on_resume(
    full: App, clock: Clock
) -> None:
    warning = cap.parse(FEED)
    await full.ingest("demo", warning)
    cancel = dataclasses.replace(
        warning, identifier=warning.identifier + "c", msg_type="Cancel", references=(warning.key,)
    )
    with crash_at(full, "tell_reached"), pytest.raises(Crash):
        await full.ingest("demo", cancel)
    incident = await full.store.incident(1)
    assert incident is not None and incident.status == "lifted"  # decided…
    assert not any(k.startswith("lifted:") for k in await _keys(full))  # …not yet told
    clock.advance(lifecycle.RESUME_AFTER_S + 1)
    assert await full.resume_unfinished() == 1
    told = [k for k in await _keys(full) if k.startswith("lifted:")]
    assert len(told) == 11 and await full.resume_unfinished() == 0
    assert await _count(full, cap_documents) == 2  # the open's and the lift's, once each


async def test_an_upgrade_cut_short_asks_each_person_once_at_the_new_level(
    full: App, clock: Clock
) -> None:
    warning = cap.parse(FEED)
    await full.ingest("demo", warning)
    red = dataclasses.replace(warning, identifier=warning.identifier + "r", colour=Colour.RED)
    with crash_at(full, "alert_duty"), pytest.raises(Crash):
        await full.ingest("demo", red)
    before = await _keys(full)
    clock.advance(lifecycle.RESUME_AFTER_S + 1)
    assert await full.resume_unfinished() == 1
    after = await _keys(full)
    assert {k: n for k, n in after.items() if k in before} == before
    assert any(k.startswith("duty-upgraded:") for k in after)
    levels = Counter((r.responder_key, r.level) for r in await full.store.requests_of(1))
    assert set(levels.values()) == {1}  # one request per person and level


async def test_a_transition_to_an_incident_lifted_meanwhile_applies_nothing(full: App) -> None:
    await full.ingest("demo", cap.parse(FEED))
    lift = Change("lift", Level.II, "雨停", "console:甲", incident_id=1)
    assert len(await full.store.apply_changes([lift], full.clock()) or []) == 1
    again = Change("lift", Level.II, "雨停", "console:乙", incident_id=1)
    upgrade = Change("upgrade", Level.I, "雨大", "feed", incident_id=1)
    assert await full.store.apply_changes([again, upgrade], full.clock()) == []
    assert [e.kind for e in await full.store.incident_events(1)] == ["open", "lift"]
