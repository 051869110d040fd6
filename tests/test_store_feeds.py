"""The feeds' part of the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import T0
from warnbot.model import Observation
from warnbot.store import Store


def _reading(minutes: int, value: float = 1.0, station: str = "usgs:01646500") -> Observation:
    return Observation(
        station=station,
        quantity="stage",
        value=value,
        unit="ft",
        time=T0 + timedelta(minutes=minutes),
        source="usgs",
    )


async def test_a_reading_is_stored_once_however_often_it_is_polled(store: Store) -> None:
    assert await store.record_observations([_reading(0), _reading(15)]) == 2
    assert await store.record_observations([_reading(15), _reading(30)]) == 1
    assert await store.record_observations([]) == 0


async def test_recent_readings_come_back_oldest_first_from_the_given_time(store: Store) -> None:
    await store.record_observations([_reading(30, 3.0), _reading(0, 1.0), _reading(15, 2.0)])
    recent = await store.recent_observations(T0 + timedelta(minutes=10))
    assert [r.value for r in recent] == [2.0, 3.0]
    assert recent[0] == _reading(15, 2.0)


async def test_only_unseen_entries_are_reported_in_their_order(store: Store) -> None:
    await store.mark_entry_seen("atom", "b", T0)
    await store.mark_entry_seen("atom", "b", T0)  # twice is harmless
    assert await store.unseen_entries("atom", ["c", "b", "a"]) == ["c", "a"]
    assert await store.unseen_entries("other", ["b"]) == ["b"]


async def test_conditional_get_validators_are_kept_with_a_success(store: Store) -> None:
    await store.feed_ok("cap", T0, etag='"abc"', last_modified="Sat, 15 Aug 2026 06:15:00 GMT")
    state = await store.feed_state("cap")
    assert state is not None and state["etag"] == '"abc"'
    assert state["last_modified"].startswith("Sat")
    assert await store.feed_state("unknown") is None


async def test_a_silence_episode_is_reported_once(store: Store) -> None:
    assert await store.report_silence("cap", "2026-08-15T06:15:00") is True
    assert await store.report_silence("cap", "2026-08-15T06:15:00") is False
    assert await store.report_silence("cap", "2026-08-15T07:00:00") is True
