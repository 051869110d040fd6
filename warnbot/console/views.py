"""Rendering console pages: one jinja2 environment per language with its gettext
catalog installed, autoescaping on, and the security headers every page carries."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from warnbot import sms
from warnbot.console import i18n
from warnbot.resources import bundled

# No inline script or style: what a template prints can never run.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


class Pages:
    """The console's templates in every language."""

    def __init__(self, timezone: str = "Asia/Shanghai") -> None:
        zone = ZoneInfo(timezone)
        self.envs = {lang: _environment(lang, zone) for lang in i18n.LANGUAGES}

    def render(self, language: str, name: str, **context: Any) -> str:
        env = self.envs.get(language, self.envs[i18n.LANGUAGES[0]])
        return env.get_template(name).render(language=language, **context)

    def response(self, language: str, name: str, status: int = 200, **context: Any) -> web.Response:
        html = self.render(language, name, **context)
        return web.Response(
            text=html, status=status, content_type="text/html", charset="utf-8", headers=HEADERS
        )


def _environment(language: str, zone: ZoneInfo) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(bundled("templates") / "console"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["hm"] = lambda t: t.astimezone(zone).strftime("%H:%M:%S") if t else ""
    env.filters["dt"] = lambda t: t.astimezone(zone).strftime("%Y-%m-%d %H:%M") if t else ""
    env.filters["pct"] = lambda r: f"{r * 100:.0f}%"
    env.filters["sms_segments"] = sms.segments
    return env
