"""Transfer lists (转移清单) are versioned like the roster: the configured file is applied
only when its content changed, ``warnbot transfer import`` survives a restart, and a
running process applies a changed file on its periodic refresh."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import DEMO, Clock
from warnbot import transfercli, transfers
from warnbot.app import App, build
from warnbot.settings import Settings, load_settings
from warnbot.store import Store
from warnbot.store.imports import Origin

LIST = """责任人编号,序号,户主,人数,联系电话,转移路线,安置点
V01,1,王某某,3,13800138101,沿村道向东500米,村委会
V02,1,赵某某,4,,沿公路北上,镇中心学校
"""
OTHER = """责任人编号,序号,户主,人数,转移路线,安置点
V03,1,孙某某,2,沿河堤北行,村小学
"""


def _settings(tmp_path: Path) -> Settings:
    """The demo with its transfer-list file in ``tmp_path`` (the test edits it)."""
    path = tmp_path / "转移清单.csv"
    path.write_text(LIST, encoding="utf-8")
    return load_settings(DEMO / "warnbot.toml").model_copy(update={"transfer_lists": path})


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _edit(path: Path, text: str) -> None:
    """Write ``text`` and move the mtime on, as an editor saving a second later does."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


async def _started(settings: Settings, store: Store, clock: Clock) -> App:
    app = build(settings, store=Store(store.engine), channels={})
    app.clock = clock
    await app.start()
    return app


def _file(settings: Settings) -> Path:
    assert settings.transfer_lists is not None
    return settings.transfer_lists


async def _version(store: Store) -> tuple[int, str]:
    state = await store.transfer_lists_state()
    assert state is not None
    return state.version, state.via


async def _households(store: Store) -> list[str]:
    return [e.household for e in await store.transfer_list()]


async def test_a_restart_keeps_an_imported_list_until_the_file_changes(
    store: Store, tmp_path: Path, clock: Clock
) -> None:
    settings = _settings(tmp_path)
    await _started(settings, store, clock)
    assert await _households(store) == ["王某某", "赵某某"]
    other = transfers.load(_write(tmp_path, "other.csv", OTHER))
    await store.import_transfer_lists(other, Origin("f" * 64, "other.csv", "import", clock()))

    await _started(settings, store, clock)  # a restart: the file did not change
    assert await _households(store) == ["孙某某"]
    assert await _version(store) == (2, "import")

    _edit(_file(settings), LIST + "V04,1,钱某某,2,,沿公路北上,镇中心学校\n")
    await _started(settings, store, clock)
    assert await _households(store) == ["王某某", "赵某某", "钱某某"]
    assert await _version(store) == (3, "config")


async def test_a_running_app_applies_a_changed_file_on_refresh(
    store: Store, tmp_path: Path, clock: Clock
) -> None:
    settings = _settings(tmp_path)
    app = await _started(settings, store, clock)
    await app.refresh()  # nothing changed: not applied again
    assert await _version(store) == (1, "config")
    _edit(_file(settings), OTHER)
    await app.refresh()
    assert await _households(store) == ["孙某某"]
    await app.refresh()
    assert await _version(store) == (2, "config")


async def test_a_bad_file_on_refresh_keeps_the_stored_lists(
    store: Store, tmp_path: Path, clock: Clock
) -> None:
    settings = _settings(tmp_path)
    app = await _started(settings, store, clock)
    _edit(_file(settings), LIST + "Z99,1,无名,2,,沿公路北上,镇中心学校\n")  # not on the roster
    await app.refresh()
    assert await _households(store) == ["王某某", "赵某某"]
    assert await _version(store) == (1, "config")


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="warnbot")
    transfercli.register(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


async def _seeded(url: str, tmp_path: Path) -> None:
    """A database holding the demo roster, as a daemon's first start leaves it."""
    roster = tmp_path / "roster.csv"
    shutil.copy(DEMO / "roster.csv", roster)
    settings = Settings(database_url=url, roster=roster)
    app = build(settings, channels={})
    await app.start()
    await app.stop()


def test_warnbot_transfer_import_replaces_the_lists_or_names_every_bad_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("WARNBOT_DATABASE_URL", url)
    monkeypatch.delenv("WARNBOT_CONFIG", raising=False)
    asyncio.run(_seeded(url, tmp_path))
    bad = _write(tmp_path, "bad.csv", OTHER + "Z99,1,无名,2,沿公路北上,镇中心学校\n")
    assert _run(["transfer", "import", str(bad)]) == 1
    assert f"{bad}:3:" in capsys.readouterr().err
    good = _write(tmp_path, "good.csv", OTHER)
    assert _run(["transfer", "import", str(good)]) == 0
    assert "版本 version 1" in capsys.readouterr().out

    async def stored() -> list[str]:
        store = Store.connect(url)
        try:
            return await _households(store)
        finally:
            await store.close()

    assert asyncio.run(stored()) == ["孙某某"]
    assert _status() == 0
    assert "转移清单 transfer lists: 版本 version 1, 导入 import" in capsys.readouterr().out


def _status() -> int:
    from warnbot.status import print_status

    return asyncio.run(print_status(load_settings()))
