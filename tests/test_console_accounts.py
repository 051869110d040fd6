"""Accounts and tokens over their life: created, audited, disabled, enabled, given a new
password and revoked from the shell, refused afterwards; API actions audited as such,
their incidents' source ``api:NAME``; the audit log is for administrators only."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.console_helpers import PASSWORD, make_account, sign_in
from warnbot import cli
from warnbot.app import App
from warnbot.console import auth
from warnbot.store import Store
from warnbot.store.accounts import AuditEntry, ConsoleStore

pytest_plugins = ("tests.console_fixtures",)

TRIGGER = {"regions": ["449901"], "level": "Ⅲ", "hazard": "暴雨"}


async def _token(app: App, name: str, role: str = "duty_officer") -> str:
    await make_account(app, name, role)
    store = ConsoleStore(app.store.engine)
    account = await store.account(name)
    assert account is not None
    return await auth.issue_api_token(store, account, "test", app.clock())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _audit(app: App) -> list[AuditEntry]:
    return list(reversed(await ConsoleStore(app.store.engine).audit_log()))


async def test_an_api_triggered_incident_names_the_api_and_every_api_action_is_audited(
    app: App, client: TestClient
) -> None:
    token = await _token(app, "接口值班员")
    resp = await client.post("/api/incidents", json=TRIGGER, headers=_bearer(token))
    incident_id = (await resp.json())["incidents"][0]["id"]
    assert (await app.store.incident(incident_id)).source == "api:接口值班员"  # type: ignore[union-attr]
    request_id = (await app.store.requests_of(incident_id))[0].id
    ack = {"request_id": request_id}
    await client.post(f"/api/incidents/{incident_id}/acks", json=ack, headers=_bearer(token))
    lift = {"reason": "雨停"}
    await client.post(f"/api/incidents/{incident_id}/lift", json=lift, headers=_bearer(token))
    await client.get("/api/incidents", headers=_bearer("forged"))
    entries = [(e.actor, e.action, e.via) for e in await _audit(app)]
    assert [e for e in entries if e[2] == "api"] == [
        ("接口值班员", "manual_open", "api"),
        ("接口值班员", "phone_ack", "api"),
        ("接口值班员", "lift", "api"),
        ("-", "api_refused_token", "api"),
    ]
    events = await app.store.incident_events(incident_id)
    assert {e.source for e in events} == {"api:接口值班员"}


async def test_a_revoked_token_is_refused(app: App, client: TestClient) -> None:
    token = await _token(app, "接口值班员")
    assert (await client.get("/api/incidents", headers=_bearer(token))).status == 200
    store = ConsoleStore(app.store.engine)
    account = await store.account("接口值班员")
    assert account is not None
    assert await store.revoke_tokens(account.id, None, app.clock()) == 1
    assert (await client.get("/api/incidents", headers=_bearer(token))).status == 401
    assert await store.revoke_tokens(account.id, None, app.clock()) == 0


async def test_a_disabled_account_loses_its_session_its_tokens_and_its_sign_in(
    app: App, client: TestClient
) -> None:
    token = await _token(app, "张三")
    await sign_in(client, "张三")
    store = ConsoleStore(app.store.engine)
    account = await store.account("张三")
    assert account is not None
    assert await store.disable_account(account.id, app.clock()) == 1
    assert (await client.get("/feeds", allow_redirects=False)).status == 302  # to sign-in
    assert (await client.get("/api/incidents", headers=_bearer(token))).status == 401
    page = await client.get("/login")
    csrf = (await page.text()).split('name="csrf" value="')[1].split('"')[0]
    form = {"name": "张三", "password": PASSWORD, "csrf": csrf}
    refused = await client.post("/login", data=form)
    assert refused.status == 401 and "用户名或密码错误" in await refused.text()


async def test_an_account_enabled_again_signs_in_but_its_old_tokens_stay_revoked(
    app: App, client: TestClient
) -> None:
    token = await _token(app, "张三")
    store = ConsoleStore(app.store.engine)
    account = await store.account("张三")
    assert account is not None
    await store.disable_account(account.id, app.clock())
    await store.enable_account(account)
    await sign_in(client, "张三")
    assert (await client.get("/feeds")).status == 200
    assert (await client.get("/api/incidents", headers=_bearer(token))).status == 401


async def test_a_new_password_ends_the_sessions_and_lifts_the_lock_out(
    app: App, client: TestClient
) -> None:
    await make_account(app, "张三", "duty_officer")
    await sign_in(client, "张三")
    store = ConsoleStore(app.store.engine)
    for _ in range(app.settings.console.max_failures):
        await store.name_failed("张三", app.clock(), app.settings.console.max_failures, 900)
    assert await store.name_locked("张三", app.clock()) is not None
    account = await store.account("张三")
    assert account is not None
    await store.set_password(account, auth.hash_password("a new one, typed twice"))
    assert (await client.get("/feeds", allow_redirects=False)).status == 302  # signed out
    assert await store.name_locked("张三", app.clock()) is None
    await sign_in(client, "张三", "a new one, typed twice")
    assert (await client.get("/feeds")).status == 200


async def test_a_duty_officer_is_refused_the_audit_log(app: App, client: TestClient) -> None:
    await make_account(app, "张三", "duty_officer")
    await sign_in(client, "张三")
    resp = await client.get("/audit")
    assert resp.status == 403 and "无权" in await resp.text()
    assert ("张三", "refused_role") in [(e.actor, e.action) for e in await _audit(app)]


def _cli(monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return cli.main(list(argv))


def test_the_shell_commands_are_audited_and_refuse_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("WARNBOT_DATABASE_URL", url)
    monkeypatch.delenv("WARNBOT_CONFIG", raising=False)
    add = ("user", "add", "李四", "--role", "duty_officer", "--password-stdin")
    assert _cli(monkeypatch, *add, stdin=PASSWORD + "\n") == 0
    assert _cli(monkeypatch, "user", "token", "李四", "--label", "大屏") == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert _cli(monkeypatch, "token", "revoke", "李四", "--label", "大屏") == 0
    assert "已吊销令牌 tokens revoked: 1" in capsys.readouterr().out
    assert _cli(monkeypatch, "user", "disable", "李四") == 0
    assert _cli(monkeypatch, "user", "disable", "无此人") == 1
    assert _cli(monkeypatch, "user", "password", "李四", "--password-stdin", stdin="short\n") == 1
    assert "至少8个字符" in capsys.readouterr().err
    new = "another long password"
    assert _cli(monkeypatch, "user", "password", "李四", "--password-stdin", stdin=new + "\n") == 0
    entries, account, by_token = asyncio.run(_read(url, token))
    assert account is not None and not account.active and by_token is None
    assert auth.check_password(account.password_hash, new)
    assert _cli(monkeypatch, "user", "enable", "李四") == 0
    entries, account, by_token = asyncio.run(_read(url, token))
    assert [(e.action, e.target, e.via) for e in entries] == [
        ("account_added", "account:李四", "cli"),
        ("api_token_issued", "account:李四", "cli"),
        ("api_tokens_revoked", "account:李四", "cli"),
        ("account_disabled", "account:李四", "cli"),
        ("password_reset", "account:李四", "cli"),
        ("account_enabled", "account:李四", "cli"),
    ]
    assert account is not None and account.active and by_token is None


async def _read(url: str, token: str) -> tuple[list[AuditEntry], Any, Any]:
    store = Store.connect(url)
    try:
        console = ConsoleStore(store.engine)
        entries = list(reversed(await console.audit_log()))
        by_token = await console.token_account(auth.digest(token), entries[-1].at)
        return entries, await console.account("李四"), by_token
    finally:
        await store.close()
