"""``warnbot roster|rota|audience``, run as an office would: real processes, exit codes,
and a store left unchanged when a file is refused."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DEMO, ROOT
from tests.test_cli import warnbot
from warnbot.model import Responder
from warnbot.store import Store

ROSTERS = ROOT / "config" / "rosters"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config with a SQLite database in ``tmp_path`` and the demo region tree."""
    shutil.copy(DEMO / "regions.toml", tmp_path / "regions.toml")
    path = tmp_path / "warnbot.toml"
    path.write_text(
        f'database_url = "sqlite+aiosqlite:///{tmp_path}/w.db"\nregions = "regions.toml"\n'
        f'roster = "{ROSTERS / "demo_roster.csv"}"\n',
        encoding="utf-8",
    )
    return path


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return warnbot(*args, "--config", str(config))


def stored(config: Path) -> tuple[list[Responder], dict[str, int]]:
    async def read() -> tuple[list[Responder], dict[str, int]]:
        store = Store.connect(f"sqlite+aiosqlite:///{config.parent}/w.db")
        try:
            return await store.roster(), await store.audience_sizes()
        finally:
            await store.close()

    return asyncio.run(read())


def bad_roster(tmp_path: Path) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(
        "编号,姓名,层级,行政区划代码,手机号码\n"
        "X01,陈立新,县,449901,+8617000000201\n"
        "X02,黄海涛,县,449909,12345\n",
        encoding="utf-8",
    )
    return path


def test_roster_check_of_a_good_file_prints_the_count_per_tier(config: Path) -> None:
    result = run(config, "roster", "check", str(ROSTERS / "demo_roster.xlsx"))
    assert result.returncode == 0, result.stderr
    assert "12 人 persons (市级 city 2, 县级 county 2, 乡镇级 township 3, 村级 village 5)" in (
        result.stdout
    )


def test_roster_check_lists_every_problem_and_exits_1(config: Path, tmp_path: Path) -> None:
    path = bad_roster(tmp_path)
    result = run(config, "roster", "check", str(path))
    assert result.returncode == 1
    assert f"  {path}:3: 行政区划代码/region_code '449909' is not in the region tree\n" in (
        result.stderr
    )
    assert f"  {path}:3: phone '12345' is not a valid number\n" in result.stderr


def test_roster_import_syncs_the_store_and_a_bad_file_changes_nothing(
    config: Path, tmp_path: Path
) -> None:
    result = run(config, "roster", "import", str(ROSTERS / "demo_roster.csv"))
    assert result.returncode == 0, result.stderr
    assert "名册已导入 roster imported (版本 version 1): 12 人 persons (市级 city 2," in (
        result.stdout
    )
    people, _ = stored(config)
    assert {p.key: p.chat_id("wecom") for p in people}["C01"] == "lin.xiaoqing"
    refused = run(config, "roster", "import", str(bad_roster(tmp_path)))
    assert refused.returncode == 1
    assert stored(config)[0] == people


def test_rota_check_warns_of_gaps_and_fails_on_overlaps(config: Path, tmp_path: Path) -> None:
    good = run(config, "rota", "check", str(ROSTERS / "demo_rota.csv"))
    assert good.returncode == 0, good.stderr
    assert "提示 warning:" in good.stdout and "9 班次 shifts" in good.stdout
    clash = tmp_path / "rota.csv"
    clash.write_text(
        "日期,开始时间,结束时间,行政区划代码,岗位,编号\n"
        "2026-08-15,08:30,20:30,449901,值班员,X01\n"
        "2026-08-15,20:00,08:30,449901,值班员,X02\n",
        encoding="utf-8",
    )
    result = run(config, "rota", "check", str(clash))
    assert result.returncode == 1
    assert (
        f"{clash}:3: 值班员/duty_officer shift of 黄海涛(示例) for 449901 overlaps" in result.stderr
    )


def test_audience_import_replaces_an_audience_and_a_bad_file_changes_nothing(
    config: Path, tmp_path: Path
) -> None:
    result = run(config, "audience", "import", str(ROSTERS / "demo_audience.csv"), "--name", "居民")
    assert result.returncode == 0, result.stderr
    assert "10 个号码 numbers, 1 重复 duplicates skipped" in result.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("手机号码,行政区划代码\n13800138001,449901\n12345,449901\n", encoding="utf-8")
    refused = run(config, "audience", "import", str(bad), "--name", "居民")
    assert refused.returncode == 1
    assert f"{bad}:3: '12345' is not a mobile number" in refused.stderr
    assert stored(config)[1] == {"居民": 10}


def test_audience_import_with_an_unknown_phone_region_says_so_and_does_not_crash(
    config: Path,
) -> None:
    config.write_text(config.read_text(encoding="utf-8") + 'phone_region = "ZZ"\n', "utf-8")
    result = run(config, "audience", "import", str(ROSTERS / "demo_audience.csv"), "--name", "居民")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "phone_region" in result.stderr and "unknown phone region 'ZZ'" in result.stderr


def test_check_config_validates_the_configured_rota_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "rota.csv").write_text(
        "日期,开始时间,结束时间,行政区划代码,岗位,编号\n2026-08-15,08:30,20:30,449901,值班员,X99\n",
        encoding="utf-8",
    )
    config = tmp_path / "warnbot.toml"
    config.write_text(
        f'roster = "{ROSTERS / "demo_roster.csv"}"\nrota = "rota.csv"\n', encoding="utf-8"
    )
    result = warnbot("--config", str(config), "check-config")
    assert result.returncode == 2
    assert f"{tmp_path / 'rota.csv'}:2: 编号/key 'X99' is not in the roster" in result.stderr
