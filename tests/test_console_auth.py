"""Console sign-in: argon2 passwords, session cookies, CSRF, roles, lock-out, audit."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import Clock
from tests.console_helpers import PASSWORD, csrf_of, make_account, sign_in
from warnbot.app import App
from warnbot.console import auth
from warnbot.store.accounts import ConsoleStore

pytest_plugins = ("tests.console_fixtures",)


async def _audit(app: App) -> list[tuple[str, str]]:
    entries = await ConsoleStore(app.store.engine).audit_log()
    return [(e.actor, e.action) for e in reversed(entries)]


async def test_passwords_are_stored_as_argon2_hashes_only(app: App) -> None:
    await make_account(app, "张三", "duty_officer")
    account = await ConsoleStore(app.store.engine).account("张三")
    assert account is not None
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash
    assert auth.check_password(account.password_hash, PASSWORD)
    assert not auth.check_password(account.password_hash, PASSWORD + "x")


async def test_a_page_without_a_session_sends_the_visitor_to_sign_in(client: TestClient) -> None:
    resp = await client.get("/feeds", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/login?next=/feeds"


async def test_signing_in_sets_a_strict_httponly_session_cookie_and_is_audited(
    app: App, client: TestClient
) -> None:
    await make_account(app, "张三", "duty_officer")
    page = await client.get("/login")
    form = {"name": "张三", "password": PASSWORD, "csrf": csrf_of(await page.text()), "next": "/"}
    resp = await client.post("/login", data=form, allow_redirects=False)
    assert resp.status == 303
    cookie = resp.cookies["wb_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain http here; over https it is Secure
    assert ("张三", "sign_in") in await _audit(app)


async def test_signing_in_without_the_form_token_is_refused(app: App, client: TestClient) -> None:
    await make_account(app, "张三", "duty_officer")
    resp = await client.post("/login", data={"name": "张三", "password": PASSWORD})
    assert resp.status == 403
    assert "wb_session" not in resp.cookies
    assert ("张三", "refused_csrf") in await _audit(app)


async def test_repeated_wrong_passwords_lock_the_account_even_against_the_right_one(
    app: App, client: TestClient, clock: Clock
) -> None:
    await make_account(app, "张三", "duty_officer")
    statuses = []
    for _ in range(app.settings.console.max_failures):
        page = await client.get("/login")
        form = {"name": "张三", "password": "wrong-password", "csrf": csrf_of(await page.text())}
        statuses.append((await client.post("/login", data=form)).status)
    assert statuses == [401] * (app.settings.console.max_failures - 1) + [429]
    page = await client.get("/login")
    form = {"name": "张三", "password": PASSWORD, "csrf": csrf_of(await page.text())}
    locked = await client.post("/login", data=form)
    assert locked.status == 429 and "锁定" in await locked.text()
    clock.advance(app.settings.console.lock_s + 1)
    assert await sign_in(client, "张三")
    actions = [a for _, a in await _audit(app)]
    assert actions.count("sign_in_wrong") == app.settings.console.max_failures - 1
    assert actions[-2:] == ["sign_in_locked", "sign_in"]


async def test_an_unknown_name_gets_the_same_answer_as_a_wrong_password(
    app: App, client: TestClient
) -> None:
    page = await client.get("/login")
    form = {"name": "无此人", "password": PASSWORD, "csrf": csrf_of(await page.text())}
    resp = await client.post("/login", data=form)
    assert resp.status == 401 and "用户名或密码错误" in await resp.text()


async def test_a_viewer_may_read_but_not_act_and_the_refusal_is_audited(
    app: App, client: TestClient
) -> None:
    await make_account(app, "小李", "viewer")
    csrf = await sign_in(client, "小李")
    assert (await client.get("/feeds")).status == 200
    resp = await client.post("/respond/preview", data={"csrf": csrf, "region": "449901"})
    assert resp.status == 403 and "无权" in await resp.text()
    assert (await client.get("/audit")).status == 403
    assert ("小李", "refused_role") in await _audit(app)


async def test_a_post_without_the_session_csrf_token_is_refused(
    app: App, client: TestClient
) -> None:
    await make_account(app, "张三", "duty_officer")
    await sign_in(client, "张三")
    resp = await client.post("/respond/preview", data={"region": "449901", "level": "III"})
    assert resp.status == 403 and "安全令牌" in await resp.text()
    forged = await client.post("/respond/preview", data={"csrf": "forged", "level": "III"})
    assert forged.status == 403
    assert [a for _, a in await _audit(app)].count("refused_csrf") == 2


async def test_a_post_without_a_session_gets_401(client: TestClient) -> None:
    resp = await client.post("/incidents/1/lift", data={"reason": "x"})
    assert resp.status == 401


async def test_signing_out_ends_the_session(app: App, client: TestClient) -> None:
    await make_account(app, "张三", "duty_officer")
    csrf = await sign_in(client, "张三")
    resp = await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303
    client.session.cookie_jar.clear()
    assert (await client.get("/", allow_redirects=False)).status == 302


async def test_an_administrator_reads_the_audit_log(app: App, client: TestClient) -> None:
    await make_account(app, "管理员", "admin")
    await sign_in(client, "管理员")
    resp = await client.get("/audit")
    assert resp.status == 200 and "sign_in" in await resp.text()


async def test_the_next_parameter_never_leaves_the_server(app: App, client: TestClient) -> None:
    await make_account(app, "张三", "duty_officer")
    page = await client.get("/login?next=https://evil.example/")
    form = {
        "name": "张三",
        "password": PASSWORD,
        "csrf": csrf_of(await page.text()),
        "next": "//evil.example/",
    }
    resp = await client.post("/login", data=form, allow_redirects=False)
    assert resp.headers["Location"] == "/"


async def test_pages_switch_to_english(app: App, client: TestClient) -> None:
    await make_account(app, "张三", "duty_officer")
    await sign_in(client, "张三")
    assert (
        "叫应" in await (await client.get("/")).text()
        or "响应事件" in await (await client.get("/")).text()
    )
    resp = await client.get("/lang/en?next=/feeds")
    assert resp.status == 200 and "Feeds" in await resp.text() and "数据源" not in await resp.text()


async def test_behind_a_tls_proxy_the_session_cookie_is_secure(
    app: App, client: TestClient
) -> None:
    await make_account(app, "张三", "duty_officer")
    page = await client.get("/login")
    form = {"name": "张三", "password": PASSWORD, "csrf": csrf_of(await page.text())}
    resp = await client.post(
        "/login", data=form, allow_redirects=False, headers={"X-Forwarded-Proto": "https"}
    )
    assert resp.status == 303 and resp.cookies["wb_session"]["secure"]


async def _attempts(client: TestClient, name: str, password: str, n: int) -> list[tuple[int, str]]:
    """Status and message of ``n`` sign-in attempts."""
    answers = []
    for _ in range(n):
        page = await client.get("/login")
        form = {"name": name, "password": password, "csrf": csrf_of(await page.text())}
        resp = await client.post("/login", data=form)
        message = (await resp.text()).split('role="alert">')[1].split("<")[0]
        answers.append((resp.status, message))
    return answers


async def test_an_unknown_name_is_locked_out_exactly_as_a_real_one(
    app: App, client: TestClient, clock: Clock
) -> None:
    await make_account(app, "张三", "duty_officer")
    n = app.settings.console.max_failures + 1
    real = await _attempts(client, "张三", "wrong-password", n)
    unknown = await _attempts(client, "无此人", "wrong-password", n)
    assert real == unknown
    assert [s for s, _ in unknown] == [401] * (n - 2) + [429, 429]
    clock.advance(app.settings.console.lock_s + 1)
    assert [s for s, _ in await _attempts(client, "无此人", PASSWORD, 1)] == [401]
    assert await sign_in(client, "张三")


async def test_names_tried_long_ago_are_forgotten(
    app: App, client: TestClient, clock: Clock
) -> None:
    for i in range(3):
        await _attempts(client, f"随机{i}", "x", 1)
    clock.advance(app.settings.console.lock_s + 1)
    await _attempts(client, "又一个", "x", 1)
    async with app.store.engine.connect() as conn:
        names = (await conn.exec_driver_sql("SELECT name FROM sign_in_throttle")).scalars().all()
    assert list(names) == ["又一个"]
