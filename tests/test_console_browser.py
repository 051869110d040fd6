"""The console in a real browser: Debian's Chromium, headless, driven by Playwright,
against a real ``warnbot run`` on 127.0.0.1 with the demo configuration.

The server is a separate process (SMS through the console channel; two feeds of
its own: one healthy that names no rule, one broken); responders answer through
the signed Twilio webhook. Each test opens the incidents it needs and lifts them
when it ends, so the tests pass in any order and every reply code is "1".
Screenshots of each page go to ``$WARNBOT_SCREENSHOTS`` or a temp dir.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import AUTH_TOKEN, DEMO, ROOT, sign
from tests.console_helpers import PASSWORD

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason="needs /usr/bin/chromium"
)
OFFICER = "值班员张三"
FOG = (DEMO / "feed" / "rainstorm_orange.xml").read_text(encoding="utf-8")
FOG = FOG.replace("<event>暴雨</event>", "<event>大雾</event>").replace("暴雨橙色", "大雾黄色")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _warnbot(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "warnbot", "--config", str(DEMO / "warnbot.toml"), *args],
        env=env,
        input=stdin,
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return done.stdout


@dataclass(frozen=True)
class Server:
    base: str
    database: Path
    token: str  # the duty officer's API token


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A running ``warnbot run`` with a duty officer and a viewer account."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    folder = tmp_path_factory.mktemp("server")
    (folder / "fog.xml").write_text(FOG, encoding="utf-8")
    (folder / "broken.xml").write_text("<alert>这不是完整的CAP", encoding="utf-8")
    feeds = [
        {"name": "大雾数据源", "url": f"file:{folder / 'fog.xml'}", "interval_s": 1},
        {"name": "坏数据源", "url": f"file:{folder / 'broken.xml'}", "interval_s": 1},
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WARNBOT_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'w.db'}",
        "WARNBOT_WEB__PORT": str(port),
        "WARNBOT_WEB__PUBLIC_URL": base,
        "WARNBOT_TWILIO__AUTH_TOKEN": AUTH_TOKEN,
        "WARNBOT_SMS_CHANNEL": "console",
        "WARNBOT_FEEDS": json.dumps(feeds, ensure_ascii=False),
        "WARNBOT_LOG_FORMAT": "json",
    }
    add = ("user", "add", OFFICER, "--role", "duty_officer", "--password-stdin")
    _warnbot(env, *add, stdin=PASSWORD)
    _warnbot(env, "user", "add", "访客小李", "--role", "viewer", "--password-stdin", stdin=PASSWORD)
    token = _warnbot(env, "user", "token", OFFICER).strip()
    cmd = [sys.executable, "-m", "warnbot", "--config", str(DEMO / "warnbot.toml"), "run"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(base)
        yield Server(base, folder / "w.db", token)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _wait_healthy(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise AssertionError("warnbot did not come up")


def _api(server: Server, path: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        f"{server.base}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        answer: dict[str, object] = json.loads(r.read())
        return answer


_hazards = itertools.count(1)


@pytest.fixture
def opened(server: Server) -> Iterator[Callable[..., int]]:
    """Open a response through the API (a hazard of its own each time); all are lifted
    at the end of the test, so no reply code of another test is left open."""
    ids: list[int] = []

    def open_(level: str = "Ⅲ", region: str = "449901") -> int:
        body = {
            "regions": [region],
            "level": level,
            "hazard": f"测试灾种{next(_hazards)}",
            "confirm_high_level": True,
        }
        answer = _api(server, "/api/incidents", body)
        incidents = answer["incidents"]
        assert isinstance(incidents, list)
        ids.append(int(incidents[0]["id"]))
        return ids[-1]

    yield open_
    for incident_id in ids:
        try:
            _api(server, f"/api/incidents/{incident_id}/lift", {"reason": "测试结束"})
        except urllib.error.HTTPError as e:
            assert e.code == 409  # the test lifted it already


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("WARNBOT_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sign_in(browser: Browser, server: Server, name: str, width: int = 1280) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900}, locale="zh-CN")
    page.goto(f"{server.base}/")
    expect(page).to_have_url(f"{server.base}/login?next=/")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".me")).to_contain_text(name)
    return page


def _reply(server: Server, phone: str, body: str) -> None:
    """A responder's SMS answer, as Twilio would post it, signed."""
    form = {"From": phone, "Body": body}
    url = f"{server.base}/hooks/twilio/sms"
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(form).encode(),
        headers=sign(url, form),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.status == 200


def _person(key: str) -> str:
    return f"#live tr[data-person={key}]"


def _lift_open_manual_responses(server: Server) -> None:
    """Lift what the manual-response test opened through the form (the fixture lifts
    only what it opened itself)."""
    with sqlite3.connect(server.database) as db:
        ids = [i for (i,) in db.execute("SELECT id FROM incidents WHERE status = 'open'")]
    for incident_id in ids:
        _api(server, f"/api/incidents/{incident_id}/lift", {"reason": "测试结束"})


def test_a_duty_officer_runs_a_level_iii_response_from_the_console(
    server: Server, browser: Browser, shots: Path
) -> None:
    page = _sign_in(browser, server, OFFICER)
    page.screenshot(path=shots / "01-incidents.png", full_page=True)
    try:
        _run_manual_response(server, page, shots)
    finally:
        _lift_open_manual_responses(server)
        page.close()


def _run_manual_response(server: Server, page: Page, shots: Path) -> None:
    page.click("text=手动启动响应")
    page.check("input[name=region][value='449901']")
    page.select_option("select[name=level]", "III")
    page.fill("input[name=hazard]", "暴雨")
    page.screenshot(path=shots / "02-manual-response.png", full_page=True)
    page.click("button:has-text('预览')")
    expect(page.locator("#preview-total")).to_have_text("10")
    expect(page.locator("q.headline")).to_have_text("示例县暴雨，启动Ⅲ级应急响应")
    expect(page.locator("tr[data-line='ask:console'] td[data-cell=messages]")).to_have_text("10")
    page.screenshot(path=shots / "03-preview.png", full_page=True)
    page.click("#confirm-send")

    expect(page.locator("h1")).to_contain_text("示例县暴雨，启动Ⅲ级应急响应")
    expect(page.locator("#live tr[data-person]")).to_have_count(10)
    incident_id = page.url.rsplit("/", 1)[1]
    page.evaluate("window.__notReloaded = true")
    for key, phone in (("V01", "+8617000000401"), ("T01", "+8617000000301")):
        _reply(server, phone, "1")
        # the board redraws over server-sent events, without a reload
        expect(page.locator(_person(key))).to_have_attribute("data-state", "confirmed")
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#live tr[data-tier=village] td[data-state=confirmed]")).to_have_text("1")
    village = page.locator("#region-tally tr[data-region='449901001001']")
    expect(village.locator("td[data-state=confirmed]")).to_have_text("1")
    page.screenshot(path=shots / "04-board-live.png", full_page=True)

    page.click(f"{_person('V02')} button:has-text('登记电话确认')")
    expect(page.locator(".notice")).to_contain_text("已登记电话确认")
    expect(page.locator(_person("V02"))).to_have_attribute("data-state", "confirmed")
    expect(page.locator(_person("V02"))).to_contain_text("值班员电话确认")

    page.click("text=仅看待确认")
    expect(page.locator("#live tr[data-person]")).to_have_count(7)
    page.screenshot(path=shots / "05-board-filtered-pending.png", full_page=True)

    page.fill("#lift-form input[name=reason]", "雨势减弱，解除响应")
    page.click("#lift-form button")
    expect(page.locator(".notice")).to_contain_text("响应已解除")
    expect(page.locator("p.muted strong")).to_have_text("已解除")
    timeline = page.locator("ol.timeline")
    expect(timeline.locator("li[data-event=open]")).to_contain_text(f"console:{OFFICER}")
    expect(timeline.locator("li[data-event=phone_ack]")).to_contain_text(OFFICER)
    confirmed = timeline.locator("li[data-event=confirmed]")
    expect(confirmed).to_have_count(3)  # V01 and T01 by SMS, V02 by the duty officer
    expect(confirmed.filter(has_text="值班员电话确认")).to_contain_text("李春华")
    expect(timeline.locator("li[data-event=lift]")).to_contain_text("雨势减弱，解除响应")
    page.screenshot(path=shots / "06-incident-lifted.png", full_page=True)

    page.goto(f"{server.base}/")
    row = page.locator(f"table.list tbody tr:has(a[href='/incidents/{incident_id}'])")
    cells = row.locator("td")
    expect(cells.nth(1)).to_contain_text("Ⅲ级响应")
    expect(cells.nth(2)).to_have_text("示例县")
    expect(cells.nth(3)).to_have_text("暴雨")
    expect(cells.nth(4)).to_have_text(f"console:{OFFICER}")
    expect(cells.nth(6)).to_contain_text("已解除")
    page.screenshot(path=shots / "08-incidents.png", full_page=True)
    page.click("text=English")
    expect(page.locator("h1")).to_have_text("Incidents")
    page.click(f"a[href='/incidents/{incident_id}'] >> nth=0")
    page.screenshot(path=shots / "09-incident-english.png", full_page=True)


def test_remind_the_silent_now_queues_a_reminder_for_each_silent_person(
    server: Server, browser: Browser, shots: Path, opened: Callable[..., int]
) -> None:
    # Level Ⅰ in the demo: 4 s to answer, then a reminder and nothing more for minutes
    incident_id = opened("Ⅰ")
    page = _sign_in(browser, server, OFFICER)
    page.goto(f"{server.base}/incidents/{incident_id}?only=silent")
    # everyone asked (11) falls silent after 4 s; the board turns them over live
    expect(page.locator("#live tr[data-person][data-state=silent]")).to_have_count(11)
    page.click("#remind-silent")
    expect(page.locator(".notice")).to_contain_text("已安排提醒 11 人")
    with sqlite3.connect(server.database) as db:
        queued = db.execute(
            "SELECT responder_key, body FROM outbox WHERE incident_id = ? AND key LIKE 'remind:%'",
            (incident_id,),
        ).fetchall()
    assert len(queued) == 11 and len({key for key, _ in queued}) == 11
    english = {"T03"}  # the demo's one English speaker
    assert all(
        ("have not had your confirmation" if key in english else "尚未收到您的确认") in body
        for key, body in queued
    )
    assert all(f"{server.base}/a/" in body for _, body in queued)
    expect(page.locator("ol.timeline li[data-event=remind_silent]")).to_contain_text("11")
    page.screenshot(path=shots / "15-reminded.png", full_page=True)
    page.close()


def test_the_feeds_page_shows_each_feeds_state_and_last_error(
    server: Server, browser: Browser, shots: Path
) -> None:
    page = _sign_in(browser, server, "访客小李")
    page.goto(f"{server.base}/feeds")
    fog = page.locator("table.list tr:has-text('大雾数据源')")
    broken = page.locator("table.list tr:has-text('坏数据源')")
    expect(fog.locator(".badge")).to_have_text("正常")
    expect(broken.locator(".badge")).to_have_text("故障")
    expect(broken.locator("td").nth(4)).not_to_be_empty()
    expect(fog.locator("td").nth(3)).to_have_text("0")
    page.screenshot(path=shots / "07-feeds.png", full_page=True)
    for name in ("rosters", "duty"):
        page.goto(f"{server.base}/{name}")
        page.screenshot(path=shots / f"07-{name}.png", full_page=True)
    page.close()


def test_the_board_fits_a_phone_screen(
    server: Server, browser: Browser, shots: Path, opened: Callable[..., int]
) -> None:
    incident_id = opened()
    page = _sign_in(browser, server, OFFICER, width=390)
    page.goto(f"{server.base}/incidents/{incident_id}")
    expect(page.locator("#live tr[data-person]")).to_have_count(10)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 420, width
    page.screenshot(path=shots / "10-phone-incident.png", full_page=True)
    page.close()


def test_without_a_session_every_page_sends_the_browser_to_sign_in(
    server: Server, browser: Browser, shots: Path
) -> None:
    page = browser.new_page()
    for path in ("/incidents/1", "/respond", "/audit"):
        page.goto(f"{server.base}{path}")
        expect(page).to_have_url(f"{server.base}/login?next={path}")
    page.screenshot(path=shots / "11-login.png", full_page=True)
    page.close()


def test_a_viewer_is_refused_the_manual_response(
    server: Server, browser: Browser, shots: Path
) -> None:
    page = _sign_in(browser, server, "访客小李")
    expect(page.locator("nav")).not_to_contain_text("手动启动响应")
    response = page.goto(f"{server.base}/respond")
    assert response is not None and response.status == 403
    expect(page.locator(".error")).to_contain_text("无权")
    page.screenshot(path=shots / "12-refused-role.png", full_page=True)
    page.close()


def test_a_form_without_its_csrf_token_is_refused(
    server: Server, browser: Browser, shots: Path
) -> None:
    page = _sign_in(browser, server, OFFICER)
    page.goto(f"{server.base}/respond")
    page.evaluate("document.querySelector('form.card input[name=csrf]').remove()")
    page.check("input[name=region][value='449901001']")
    page.fill("input[name=hazard]", "山洪")
    page.click("button:has-text('预览')")
    expect(page.locator(".error")).to_contain_text("安全令牌")
    page.screenshot(path=shots / "13-refused-csrf.png", full_page=True)
    page.close()


def test_script_in_free_text_is_shown_as_text_and_never_runs(
    server: Server, browser: Browser, shots: Path
) -> None:
    page = _sign_in(browser, server, OFFICER)
    page.goto(f"{server.base}/respond")
    evil = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">地质灾害'
    page.check("input[name=region][value='449901002']")
    page.fill("input[name=hazard]", "地质灾害")
    page.fill("textarea[name=text]", evil)
    page.click("button:has-text('预览')")
    expect(page.locator("q.headline")).to_have_text(evil)
    try:
        page.click("#confirm-send")
        expect(page.locator("h1")).to_contain_text("<script>window.__pwned=1</script>")
        assert page.evaluate("window.__pwned === undefined")
        page.screenshot(path=shots / "14-escaped-free-text.png", full_page=True)
    finally:
        _lift_open_manual_responses(server)
        page.close()
