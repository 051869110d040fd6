"""Sign-in, sessions and CSRF.

The session cookie holds a random token; the database keeps its SHA-256 and a
per-session CSRF token that every form posts back. The cookie is HttpOnly,
SameSite=Strict, and Secure when the request came over https (or a proxy says
``X-Forwarded-Proto: https``). The sign-in form,
which has no session yet, uses a double-submit cookie instead. ``guard`` wraps
every console handler: no session → the sign-in page (or 401 for a POST),
too low a role → 403, a POST without the right CSRF token → 403; refusals are
audited too.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from warnbot.app import App
from warnbot.console import auth, i18n
from warnbot.console.keys import CONSOLE_STORE, PAGES
from warnbot.store.accounts import Account
from warnbot.web.keys import APP

COOKIE = "wb_session"
PRE_COOKIE = "wb_signin"
LANG_COOKIE = "wb_lang"


@dataclass(frozen=True)
class Visitor:
    """Who is asking: the account (None before sign-in), its CSRF token, the language."""

    account: Account | None
    csrf: str
    language: str
    form: MultiDictProxy[str] | None = None
    path: str = "/"

    @property
    def name(self) -> str:
        return self.account.name if self.account else "-"

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name, default) if self.form is not None else default
        return value if isinstance(value, str) else default


_VISITOR = web.RequestKey("console_visitor", Visitor)
Handler = Callable[[web.Request, Visitor], Awaitable[web.StreamResponse]]


async def visitor(request: web.Request) -> Visitor:
    if _VISITOR in request:
        return request[_VISITOR]
    app = request.app[APP]
    language = i18n.choose(request.cookies.get(LANG_COOKIE), app.settings.console.language)
    token = request.cookies.get(COOKIE)
    found = (
        await request.app[CONSOLE_STORE].session(auth.digest(token), app.clock()) if token else None
    )
    path = request.path_qs if request.method == "GET" else "/"
    v = Visitor(*found, language, path=path) if found else Visitor(None, "", language, path=path)
    request[_VISITOR] = v
    return v


def guard(role: str) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Let the handler run only for a signed-in account of at least ``role``; POSTs
    must also carry the session's CSRF token in the ``csrf`` field."""

    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(handler)
        async def inner(request: web.Request) -> web.StreamResponse:
            v = await visitor(request)
            if v.account is None:
                return await _no_session(request, v)
            if request.method == "POST":
                v = await _with_form(request, v)
            if v.account is None or not auth.allows(v.account.role, role):
                await _refuse(request, v, "refused_role", f"needs {role}")
                return _error(request, v, 403, "role")
            if request.method == "POST" and not _same(v.field("csrf"), v.csrf):
                await _refuse(request, v, "refused_csrf", "missing or wrong CSRF token")
                return _error(request, v, 403, "csrf")
            return await handler(request, v)

        return inner

    return wrap


async def _with_form(request: web.Request, v: Visitor) -> Visitor:
    form = await request.post()
    text = MultiDictProxy(MultiDict((k, val) for k, val in form.items() if isinstance(val, str)))
    v = Visitor(v.account, v.csrf, v.language, text, v.path)
    request[_VISITOR] = v
    return v


async def _no_session(request: web.Request, v: Visitor) -> web.StreamResponse:
    if request.method == "GET" and "text/event-stream" not in request.headers.get("Accept", ""):
        raise web.HTTPFound(f"/login?next={quote(request.path_qs, safe='')}")
    await _refuse(request, v, "refused_no_session", "")
    return _error(request, v, 401, "session")


async def _refuse(request: web.Request, v: Visitor, action: str, detail: str) -> None:
    app = request.app[APP]
    target = f"{request.method} {request.path}"
    await request.app[CONSOLE_STORE].audit(v.name, action, app.clock(), target, detail)


def _error(request: web.Request, v: Visitor, status: int, reason: str) -> web.Response:
    return request.app[PAGES].response(
        v.language, "error.html", status=status, reason=reason, me=v, path=request.path
    )


def _same(given: str, expected: str) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given, expected)


# --- sign-in and out ---------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    v = await visitor(request)
    return _login(request, v, "", 200)


def _login(request: web.Request, v: Visitor, error: str, status: int) -> web.Response:
    pre = secrets.token_urlsafe(24)
    response = request.app[PAGES].response(
        v.language,
        "login.html",
        status=status,
        me=v,
        csrf=pre,
        error=error,
        next=_local(request.query.get("next", "/")),
    )
    _set_cookie(request, response, PRE_COOKIE, pre, max_age=3600)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    """Check the double-submit token, then the password; lock-out after repeated failures."""
    app: App = request.app[APP]
    store = request.app[CONSOLE_STORE]
    v = await visitor(request)
    form = await request.post()
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    if not _same(str(form.get("csrf", "")), request.cookies.get(PRE_COOKIE, "")):
        await store.audit(name or "-", "refused_csrf", app.clock(), "POST /login")
        return _login(request, v, "csrf", 403)
    settings = app.settings.console
    result = await auth.sign_in(
        store,
        name,
        password,
        app.clock(),
        max_failures=settings.max_failures,
        lock_s=settings.lock_s,
    )
    if result.outcome != "ok" or result.account is None:
        await store.audit(name or "-", f"sign_in_{result.outcome}", app.clock(), "POST /login")
        return _login(request, v, result.outcome, 429 if result.outcome == "locked" else 401)
    token = auth.new_token()
    await store.add_session(
        auth.digest(token),
        result.account.id,
        secrets.token_urlsafe(24),
        app.clock(),
        settings.session_ttl_s,
    )
    await store.audit(result.account.name, "sign_in", app.clock(), "POST /login")
    response = web.HTTPSeeOther(_local(str(form.get("next", "/"))))
    _set_cookie(request, response, COOKIE, token, max_age=int(settings.session_ttl_s))
    response.del_cookie(PRE_COOKIE, path="/")
    raise response


@guard("viewer")
async def logout(request: web.Request, v: Visitor) -> web.StreamResponse:
    token = request.cookies.get(COOKIE, "")
    await request.app[CONSOLE_STORE].drop_session(auth.digest(token))
    await request.app[CONSOLE_STORE].audit(v.name, "sign_out", request.app[APP].clock(), "")
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


async def switch_language(request: web.Request) -> web.StreamResponse:
    """``/lang/en`` or ``/lang/zh``: remember the choice, go back where the visitor was."""
    language = request.match_info["lang"]
    if language not in i18n.LANGUAGES:
        raise web.HTTPNotFound()
    response = web.HTTPSeeOther(_local(request.query.get("next", "/")))
    _set_cookie(request, response, LANG_COOKIE, language, max_age=365 * 86400, http_only=False)
    raise response


def _set_cookie(
    request: web.Request,
    response: web.StreamResponse,
    name: str,
    value: str,
    *,
    max_age: int,
    http_only: bool = True,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=http_only,
        samesite="Strict",
        secure=served_over_https(request),
    )


def served_over_https(request: web.Request) -> bool:
    """True over TLS, directly or through a proxy that says so (trusting a forged header
    here only makes the cookie stricter)."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def _local(target: str) -> str:
    """Only paths on this server: ``next=https://elsewhere`` must not redirect away."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
