"""The console's message catalogs: every string the templates and the console's Python
show is translated, none is left over, and the English switch shows English."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import ROOT
from warnbot.console import i18n, messages

CONFIG = ROOT / "babel.cfg"


def _msgids(method_map: list[tuple[str, str]]) -> set[str]:
    options = {"templates/console/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
    found = extract_from_dir(str(ROOT), method_map, options)
    return {m[2] if isinstance(m[2], str) else m[2][0] for m in found}


def _template_msgids() -> set[str]:
    return _msgids([("templates/console/**.html", "jinja2")])


def _python_msgids() -> set[str]:
    """Strings the console's Python marks with ``N_`` (errors, hazards, headline labels)."""
    return _msgids([("warnbot/console/**.py", "python")])


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


def test_every_string_the_python_code_shows_is_translated_in_both_catalogs() -> None:
    used = _python_msgids()
    assert {"Give a reason.", "rainstorm", "Standard: start the response"} <= used
    zh, en = _catalog("zh"), _catalog("en")
    assert sorted(used - {k for k, v in zh.items() if v}) == []
    assert sorted(used - set(en)) == []


def test_the_catalogs_hold_no_string_nothing_uses() -> None:
    used = _template_msgids() | _python_msgids()
    assert sorted(set(_catalog("zh")) - used) == [] and sorted(set(_catalog("en")) - used) == []


def test_the_errors_hazards_and_headline_labels_follow_the_language() -> None:
    assert messages.text("zh", "reason") == "请填写原因。"
    assert messages.text("en", "unknown_region", region="'449977'") == "Unknown region '449977'."
    assert messages.both("lifted") == "该响应已解除。 The incident is already lifted."
    assert i18n.translations("zh").gettext(messages.HAZARDS["山洪"]) == "山洪"
    assert not messages.redirectable("unknown_region") and messages.redirectable("reason")
    assert messages.text("en", "<script>") == ""


def test_the_catalogs_compile_from_po_on_a_fresh_clone() -> None:
    zh = i18n.compile_po(i18n.locale_dir() / "zh" / "LC_MESSAGES" / "console.po")
    assert zh.gettext("Ack board") == "叫应看板"
    assert i18n.translations("en").gettext("Ack board") == "Ack board"
    assert i18n.translations("xx").gettext("Incidents") == "响应事件"  # unknown → Chinese


def test_the_babel_extraction_config_is_committed() -> None:
    assert "templates/console" in CONFIG.read_text()
