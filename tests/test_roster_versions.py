"""The store's roster is the one used: the configured file is applied only when its
content changed, ``roster import`` survives a restart, and a running process reloads a
newer version on its periodic refresh."""

from __future__ import annotations

import shutil
from pathlib import Path

import aiohttp
import pytest
from alembic import command

from tests.conftest import DEMO, Clock
from tests.factories import person
from warnbot import schedule
from warnbot.app import App, build
from warnbot.errors import ConfigError
from warnbot.settings import Settings, load_settings
from warnbot.store import Store
from warnbot.store.db import alembic_config


def _settings(tmp_path: Path) -> Settings:
    """The demo configuration with its roster copied to ``tmp_path`` (the test edits it)."""
    roster = tmp_path / "roster.csv"
    shutil.copy(DEMO / "roster.csv", roster)
    return load_settings(DEMO / "warnbot.toml").model_copy(update={"roster": roster})


async def _started(settings: Settings, store: Store, clock: Clock) -> App:
    app = build(settings, store=Store(store.engine), channels={})
    app.clock = clock
    await app.start()
    return app


async def test_a_restart_keeps_an_explicit_import_until_the_file_changes(
    store: Store, tmp_path: Path, clock: Clock
) -> None:
    settings = _settings(tmp_path)
    first = await _started(settings, store, clock)
    assert "V01" in first.people and first.roster_version == 1
    imported = [person("Z01"), person("Z02")]
    await store.import_roster(imported, "f" * 64, "other.csv", "import", clock())

    again = await _started(settings, store, clock)  # a restart: the file did not change
    assert sorted(again.people) == ["Z01", "Z02"] and again.roster_version == 2

    roster = settings.roster
    assert roster is not None
    added = "V06,新增(示例),村,449901001001,+8617000000406,,zh,T01\n"
    roster.write_text(roster.read_text(encoding="utf-8") + added, encoding="utf-8")
    changed = await _started(settings, store, clock)
    assert "V06" in changed.people and "Z01" not in changed.people
    state = await store.roster_state()
    assert state is not None and (state.version, state.via) == (3, "config")


async def test_a_running_app_reloads_a_newer_roster_on_refresh(
    store: Store, tmp_path: Path, clock: Clock
) -> None:
    app = await _started(_settings(tmp_path), store, clock)
    assert await app.refresh() is False  # nothing new: one small read, no reload
    await store.import_roster([person("Z01")], "e" * 64, "other.csv", "import", clock())
    assert await app.refresh() is True
    assert list(app.people) == ["Z01"] and app.roster_version == 2
    assert await store.responder_for_phone(person("Z01").phones[0]) == "Z01"


async def test_a_roster_naming_a_region_outside_the_tree_stops_the_start(
    store: Store, tmp_path: Path, clock: Clock
) -> None:
    settings = _settings(tmp_path)
    roster = settings.roster
    assert roster is not None
    added = "V09,错区(示例),村,449909001001,+8617000000409,,zh,\n"
    roster.write_text(roster.read_text(encoding="utf-8") + added, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        await _started(settings, store, clock)
    assert any(f"{roster}:14:" in p and "region tree" in p for p in raised.value.problems)
    assert await store.roster() == [] and await store.roster_state() is None


async def test_migration_0009_goes_down_to_0008_and_up_again(store: Store, clock: Clock) -> None:
    await store.import_roster([person("Z01")], "d" * 64, "a.csv", "import", clock())
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0008"))
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))
    assert await store.roster_state() is None
    state = await store.import_roster([person("Z01")], "d" * 64, "a.csv", "import", clock())
    assert state.version == 1
    await store.replace_audience("a", {"+8617000002001": "449901"}, "t", clock())
    assert await store.opt_out("+8617000002001", clock()) == 1


async def test_every_process_refreshes_its_roster_whether_it_leads_or_not(
    store: Store, tmp_path: Path, clock: Clock
) -> None:
    app = await _started(_settings(tmp_path), store, clock)
    async with aiohttp.ClientSession() as session:
        jobs = schedule.Schedule(app, session, leader=False)
        assert {j.id for j in jobs.scheduler.get_jobs()} == {"outbox", "refresh"}
        jobs.lead()
        assert "escalation" in {j.id for j in jobs.scheduler.get_jobs()}
        await jobs.follow()
        assert {j.id for j in jobs.scheduler.get_jobs()} == {"outbox", "refresh"}


async def test_the_tables_of_0009_are_exactly_what_the_code_reads(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from warnbot.store.tables import metadata

    async with store.engine.connect() as conn:
        diffs = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), metadata)
        )
    mine = ("'imports'", "'opt_outs'")
    assert [d for d in diffs if any(t in str(d) for t in mine)] == []
