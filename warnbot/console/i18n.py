"""The console's languages: Chinese first, English on request, from gettext catalogs.

Catalogs are ``locale/<lang>/LC_MESSAGES/console.po`` (msgids in English). A
compiled ``.mo`` beside a ``.po`` is used when it is at least as new; otherwise
the ``.po`` is compiled in memory with Babel, so a fresh clone works without
a build step. Extract new strings with ``pybabel extract -F babel.cfg``.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from warnbot.resources import bundled

LANGUAGES = ("zh", "en")
DOMAIN = "console"


def locale_dir() -> Path:
    return bundled("locale")


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalog of ``language`` (one of LANGUAGES); unknown languages get Chinese."""
    if language not in LANGUAGES:
        language = LANGUAGES[0]
    folder = locale_dir() / language / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.is_file() and (not po.is_file() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as f:
            return gettext.GNUTranslations(f)
    return compile_po(po)


def compile_po(po: Path) -> gettext.GNUTranslations:
    """A ``.po`` file as translations, compiled in memory."""
    with po.open("rb") as f:
        catalog = read_po(f)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def choose(cookie: str | None, default: str) -> str:
    """The language the visitor switched to, else the configured one (Chinese first)."""
    return cookie if cookie in LANGUAGES else default
