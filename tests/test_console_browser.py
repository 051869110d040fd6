"""The console in a real browser: Debian's Chromium, headless, driven by Playwright,
against a real ``warnbot run`` on 127.0.0.1 with the demo configuration.

The server is a separate process (SMS through the console channel, feeds off so
only the manual response is open); responders answer through the signed Twilio
webhook. Screenshots of each page go to ``$WARNBOT_SCREENSHOTS`` or a temp dir.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import AUTH_TOKEN, DEMO, ROOT, sign
from tests.console_helpers import PASSWORD

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason="needs /usr/bin/chromium"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _warnbot(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "warnbot", "--config", str(DEMO / "warnbot.toml"), *args],
        env=env,
        input=stdin,
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running ``warnbot run`` with a duty officer and a viewer account; its base URL."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WARNBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db')}/w.db",
        "WARNBOT_WEB__PORT": str(port),
        "WARNBOT_WEB__PUBLIC_URL": base,
        "WARNBOT_TWILIO__AUTH_TOKEN": AUTH_TOKEN,
        "WARNBOT_SMS_CHANNEL": "console",
        "WARNBOT_FEEDS": "[]",
        "WARNBOT_LOG_FORMAT": "json",
    }
    _warnbot(
        env,
        "user",
        "add",
        "值班员张三",
        "--role",
        "duty_officer",
        "--password-stdin",
        stdin=PASSWORD,
    )
    _warnbot(env, "user", "add", "访客小李", "--role", "viewer", "--password-stdin", stdin=PASSWORD)
    cmd = [sys.executable, "-m", "warnbot", "--config", str(DEMO / "warnbot.toml"), "run"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(base)
        yield base
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


def _sign_in(browser: Browser, base: str, name: str, width: int = 1280) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900}, locale="zh-CN")
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login?next=/")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator(".me")).to_contain_text(name)
    return page


def _reply(base: str, phone: str, body: str) -> None:
    """A responder's SMS answer, as Twilio would post it, signed."""
    form = {"From": phone, "Body": body}
    url = f"{base}/hooks/twilio/sms"
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(form).encode(),
        headers=sign(url, form),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.status == 200


def _person(page: Page, key: str) -> str:
    return f"#live tr[data-person={key}]"


def test_a_duty_officer_runs_a_level_iii_response_from_the_console(
    server: str, browser: Browser, shots: Path
) -> None:
    page = _sign_in(browser, server, "值班员张三")
    page.screenshot(path=shots / "01-incidents-empty.png", full_page=True)

    page.click("text=手动启动响应")
    page.check("input[name=region][value='449901']")
    page.select_option("select[name=level]", "III")
    page.fill("input[name=hazard]", "暴雨")
    page.screenshot(path=shots / "02-manual-response.png", full_page=True)
    page.click("button:has-text('预览')")
    expect(page.locator("#preview-total")).to_have_text("10")
    expect(page.locator("q.headline")).to_have_text("示例县暴雨，启动Ⅲ级应急响应")
    page.screenshot(path=shots / "03-preview.png", full_page=True)
    page.click("#confirm-send")

    expect(page.locator("h1")).to_contain_text("示例县暴雨，启动Ⅲ级应急响应")
    expect(page.locator("#live tr[data-person]")).to_have_count(10)
    page.evaluate("window.__notReloaded = true")
    for key, phone in (("V01", "+8617000000401"), ("T01", "+8617000000301")):
        _reply(server, phone, "1")
        # the board redraws over server-sent events, without a reload
        expect(page.locator(_person(page, key))).to_have_attribute("data-state", "confirmed")
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#live tr[data-tier=village] td[data-state=confirmed]")).to_have_text("1")
    page.screenshot(path=shots / "04-board-live.png", full_page=True)

    page.click(f"{_person(page, 'V02')} button:has-text('登记电话确认')")
    expect(page.locator(".notice")).to_contain_text("已登记电话确认")
    expect(page.locator(_person(page, "V02"))).to_have_attribute("data-state", "confirmed")
    expect(page.locator(_person(page, "V02"))).to_contain_text("值班员电话确认")
    expect(page.locator("ol.timeline")).to_contain_text("值班员张三")

    page.click("text=仅看待确认")
    expect(page.locator("#live tr[data-person]")).to_have_count(7)
    page.screenshot(path=shots / "05-board-filtered-pending.png", full_page=True)

    page.fill("#lift-form input[name=reason]", "雨势减弱，解除响应")
    page.click("#lift-form button")
    expect(page.locator(".notice")).to_contain_text("响应已解除")
    expect(page.locator("p.muted strong")).to_have_text("已解除")
    page.screenshot(path=shots / "06-incident-lifted.png", full_page=True)

    for name in ("feeds", "rosters", "duty"):
        page.goto(f"{server}/{name}")
        page.screenshot(path=shots / f"07-{name}.png", full_page=True)
    page.goto(f"{server}/")
    expect(page.locator("table.list tbody tr")).to_have_count(1)
    page.screenshot(path=shots / "08-incidents.png", full_page=True)
    page.click("text=English")
    expect(page.locator("h1")).to_have_text("Incidents")
    page.click("table.list a >> nth=0")
    page.screenshot(path=shots / "09-incident-english.png", full_page=True)
    page.close()


def test_the_board_fits_a_phone_screen(server: str, browser: Browser, shots: Path) -> None:
    page = _sign_in(browser, server, "值班员张三", width=390)
    page.goto(f"{server}/incidents/1")
    expect(page.locator("#live tr[data-person]")).to_have_count(10)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 420, width
    page.screenshot(path=shots / "10-phone-incident.png", full_page=True)
    page.close()


def test_without_a_session_every_page_sends_the_browser_to_sign_in(
    server: str, browser: Browser, shots: Path
) -> None:
    page = browser.new_page()
    for path in ("/incidents/1", "/respond", "/audit"):
        page.goto(f"{server}{path}")
        expect(page).to_have_url(f"{server}/login?next={path}")
    page.screenshot(path=shots / "11-login.png", full_page=True)
    page.close()


def test_a_viewer_is_refused_the_manual_response(
    server: str, browser: Browser, shots: Path
) -> None:
    page = _sign_in(browser, server, "访客小李")
    expect(page.locator("nav")).not_to_contain_text("手动启动响应")
    response = page.goto(f"{server}/respond")
    assert response is not None and response.status == 403
    expect(page.locator(".error")).to_contain_text("无权")
    page.screenshot(path=shots / "12-refused-role.png", full_page=True)
    page.close()


def test_a_form_without_its_csrf_token_is_refused(
    server: str, browser: Browser, shots: Path
) -> None:
    page = _sign_in(browser, server, "值班员张三")
    page.goto(f"{server}/respond")
    page.evaluate("document.querySelector('form.card input[name=csrf]').remove()")
    page.check("input[name=region][value='449901001']")
    page.fill("input[name=hazard]", "山洪")
    page.click("button:has-text('预览')")
    expect(page.locator(".error")).to_contain_text("安全令牌")
    page.screenshot(path=shots / "13-refused-csrf.png", full_page=True)
    page.close()


def test_script_in_free_text_is_shown_as_text_and_never_runs(
    server: str, browser: Browser, shots: Path
) -> None:
    page = _sign_in(browser, server, "值班员张三")
    page.goto(f"{server}/respond")
    evil = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">地质灾害'
    page.check("input[name=region][value='449901002']")
    page.fill("input[name=hazard]", "地质灾害")
    page.fill("textarea[name=text]", evil)
    page.click("button:has-text('预览')")
    expect(page.locator("q.headline")).to_have_text(evil)
    page.click("#confirm-send")
    expect(page.locator("h1")).to_contain_text("<script>window.__pwned=1</script>")
    assert page.evaluate("window.__pwned === undefined")
    page.screenshot(path=shots / "14-escaped-free-text.png", full_page=True)
    page.close()
