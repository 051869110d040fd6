"""The command line, run as a user would: real processes, real exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import ROOT

CONFIG = ROOT / "config" / "warnbot.toml"


def warnbot(
    *args: str, env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warnbot", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        check=False,
    )


def test_check_config_accepts_the_example_configuration() -> None:
    result = warnbot("--config", str(CONFIG), "check-config")
    assert result.returncode == 0, result.stderr
    assert "12 人" in result.stdout and "configuration OK" in result.stdout


def test_check_config_reports_every_error_with_its_location(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[web]\nport = 99999\n[twilio]\nauth_token = "oops"\n'
        '[[rules]]\nname = "x"\nhazard = "暴雨"\nevents = ["暴雨"]\n'
        'region_codes = ["449900"]\nlevel = "V"\n',
        encoding="utf-8",
    )
    result = warnbot("--config", str(bad), "check-config")
    assert result.returncode == 2
    assert f"{bad}: web.port:" in result.stderr
    assert f"{bad}: rules.0.level:" in result.stderr
    assert f"{bad}: twilio.auth_token: secrets are not read" in result.stderr
    assert "oops" not in result.stderr + result.stdout


def test_check_config_reports_bad_roster_rows_with_file_and_line(tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "编号,姓名,层级,行政区划代码,手机号码\nA,甲,村,449901001001,12345\n", encoding="utf-8"
    )
    config = tmp_path / "warnbot.toml"
    config.write_text('roster = "roster.csv"\n', encoding="utf-8")
    result = warnbot("--config", str(config), "check-config")
    assert result.returncode == 2 and f"{roster}:2: phone '12345'" in result.stderr


def test_check_config_builds_every_channel_and_names_the_unusable_ones(tmp_path: Path) -> None:
    config = tmp_path / "warnbot.toml"
    config.write_text('sms_channel = "twilio"\n[channels.fax]\nurl = "x"\n', encoding="utf-8")
    unknown = warnbot("--config", str(config), "check-config")
    assert unknown.returncode == 2 and "channels.fax: no such channel" in unknown.stderr
    config.write_text('sms_channel = "twilio"\n', encoding="utf-8")
    tokenless = warnbot("--config", str(config), "check-config")
    assert tokenless.returncode == 2
    assert "channels.twilio: Twilio account_sid and auth token are not configured" in (
        tokenless.stderr
    )
    env = {"WARNBOT_TWILIO__ACCOUNT_SID": "AC" + "0" * 32, "WARNBOT_TWILIO__AUTH_TOKEN": "t" * 32}
    ready = warnbot("--config", str(config), "check-config", env=env)
    assert ready.returncode == 0 and "channels: twilio, voice" in ready.stdout, ready.stderr


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    result = warnbot("db", "upgrade", env={"WARNBOT_DATABASE_URL": f"sqlite+aiosqlite:///{db}"})
    assert result.returncode == 0, result.stderr
    assert db.exists()


def test_the_demo_runs_the_whole_loop_offline_and_ends_with_the_summary() -> None:
    started = time.monotonic()
    result = warnbot("demo", timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started < 60
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"叫应: \d+/\d+ confirmed, \d+ escalated(, \d+ unreachable)?", lines[-1])
    assert lines[-1] == "叫应: 10/11 confirmed, 2 escalated, 1 unreachable"
    for seen in (
        "启动响应 incident opened",
        "✔ 确认 confirmed",
        "↻ 再次提醒",
        "☎ 语音呼叫 voice call",
        "← 按键 keypad",
        "⚠ 未应答上报",
        "告知值班员 still silent, duty officer told",
        "✖ 无法联系 unreachable",
    ):
        assert seen in result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                return str(resp.read().decode())
        except OSError:
            time.sleep(0.2)
    raise AssertionError("daemon never became healthy")


def test_the_daemon_serves_health_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "WARNBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/d.db",
        "WARNBOT_WEB__PORT": str(port),
        "WARNBOT_LOG_FORMAT": "json",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "warnbot", "--config", str(CONFIG), "run"],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert '"ok"' in _wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert '"event": "stopped"' in stderr and "+8617000000" not in stderr


SAMPLES = ROOT / "tests" / "data" / "samples"


def test_feeds_parse_prints_one_json_object_per_warning() -> None:
    result = warnbot("feeds", "parse", str(SAMPLES / "cap" / "tw_cwa_heavyrain_1_alert.xml"))
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.strip().splitlines()
    obj = json.loads(line)
    assert obj["kind"] == "warning" and obj["msg_type"] == "Alert"


def test_feeds_parse_reads_gauges_into_observations_with_units() -> None:
    gauge = SAMPLES / "gauges" / "usgs_iv_latest_2sites_flow_stage.json"
    result = warnbot("feeds", "parse", "--format", "usgs", str(gauge))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(r["kind"] == "observation" and r["unit"] for r in rows)


def test_feeds_parse_exits_non_zero_with_the_reason_on_bad_input() -> None:
    result = warnbot("feeds", "parse", str(SAMPLES / "bad" / "xxe_external_entity.cap.xml"))
    assert result.returncode == 1
    assert "cannot parse" in result.stderr and "Traceback" not in result.stderr


def test_rules_test_replays_a_chain_and_says_why_each_transition_happened(tmp_path: Path) -> None:
    feed = (ROOT / "config" / "demo" / "feed" / "rainstorm_orange.xml").read_text("utf-8")
    cancel = (
        feed.replace("_1</identifier>", "_2</identifier>")
        .replace("<sent>2026-08-15T06:15:00+08:00</sent>", "<sent>2026-08-15T09:00:00+08:00</sent>")
        .replace(
            "<msgType>Alert</msgType>",
            "<msgType>Cancel</msgType><references>449901416000,"
            "44990141600000_20260815061500_1,2026-08-15T06:15:00+08:00</references>",
        )
    )
    (tmp_path / "2.xml").write_text(cancel, encoding="utf-8")
    demo = ROOT / "config" / "demo" / "warnbot.toml"
    result = warnbot(
        "rules",
        "test",
        "--config",
        str(demo),
        str(ROOT / "config" / "demo" / "feed" / "rainstorm_orange.xml"),
        str(tmp_path / "2.xml"),
    )
    assert result.returncode == 0, result.stderr
    opened, lifted = result.stdout.strip().splitlines()
    assert "open" in opened and "暴雨@449901" in opened and "Ⅱ级" in opened
    assert "暴雨橙色 → Ⅱ级" in opened
    assert "lift" in lifted and "CAP Cancel" in lifted
