"""Helpers for the console tests: accounts, signing in through the real form, CSRF, a
manual response. Their fixtures are in ``console_fixtures.py``."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from warnbot.app import App
from warnbot.console import auth
from warnbot.store.accounts import ConsoleStore

PASSWORD = "correct horse battery"
MANUAL = {"region": "449901", "level": "III", "hazard": "暴雨", "template": "standard", "text": ""}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def make_account(app: App, name: str, role: str, password: str = PASSWORD) -> int:
    return await auth.add_account(ConsoleStore(app.store.engine), name, role, password, app.clock())


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token (from the next page)."""
    page = await client.get("/login")
    form = {"name": name, "password": password, "csrf": csrf_of(await page.text()), "next": "/"}
    resp = await client.post("/login", data=form)
    assert resp.status == 200, await resp.text()
    return csrf_of(await resp.text())


async def open_manual(client: TestClient, csrf: str, **changes: Any) -> int:
    """Confirm a manual response (Level Ⅲ 暴雨 for the demo county unless changed); its id."""
    form = {**MANUAL, **changes, "csrf": csrf}
    resp = await client.post("/respond/confirm", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    return int(resp.headers["Location"].rsplit("/", 1)[1])


async def confirm_by_link(app: App, incident_id: int, key: str) -> None:
    """Person ``key`` confirms their request of the incident through their signed link."""
    request = next(r for r in await app.store.requests_of(incident_id) if r.responder_key == key)
    await app.link_ack(request.id)
