"""The console's message catalogs: every string the templates use is translated."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import ROOT
from warnbot.console import i18n

CONFIG = ROOT / "babel.cfg"


def _template_msgids() -> set[str]:
    method_map = [("templates/console/**.html", "jinja2")]
    options = {"templates/console/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
    found = extract_from_dir(str(ROOT), method_map, options)
    return {
        m[2] if isinstance(m[2], str) else m[2][0]
        for m in found
        if m[0].startswith("templates/console")
    }


def _catalog(language: str) -> dict[str, str]:
    path: Path = i18n.locale_dir() / language / "LC_MESSAGES" / "console.po"
    with path.open("rb") as f:
        return {str(m.id): str(m.string) for m in read_po(f) if m.id}


def test_every_template_string_has_a_chinese_translation() -> None:
    used = _template_msgids()
    zh = _catalog("zh")
    assert used, "no strings extracted"
    assert sorted(used - {k for k, v in zh.items() if v}) == []


def test_every_template_string_is_in_the_english_catalog() -> None:
    assert sorted(_template_msgids() - set(_catalog("en"))) == []


def test_the_catalogs_compile_from_po_on_a_fresh_clone() -> None:
    zh = i18n.compile_po(i18n.locale_dir() / "zh" / "LC_MESSAGES" / "console.po")
    assert zh.gettext("Ack board") == "叫应看板"
    assert i18n.translations("en").gettext("Ack board") == "Ack board"
    assert i18n.translations("xx").gettext("Incidents") == "响应事件"  # unknown → Chinese


def test_the_babel_extraction_config_is_committed() -> None:
    assert "templates/console" in CONFIG.read_text()
