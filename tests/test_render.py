"""Tests for warnbot.render with the real templates in templates/.

Each SMS template gets the context ``warnbot.app`` gives it (``_sms``, ``_silent_report``,
``_after_ack``): an Incident and a Responder from the demo roster, a reply code, a signed link.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import jinja2
import pytest
from jinja2.sandbox import SecurityError

from tests.conftest import DEMO, ROOT, T0
from tests.factories import incident
from warnbot import links, receipts, rosters
from warnbot.feedwatch import Silence
from warnbot.model import Incident, Level
from warnbot.render import Renderer

RENDERER = Renderer(ROOT / "templates")
PEOPLE = {p.key: p for p in rosters.load(DEMO / "roster.csv")}
INCIDENT = replace(
    incident(T0, level=Level.II, region="449901"),
    id=12,
    headline="示例县气象台发布暴雨橙色预警信号",
)
REPORT = receipts.parse_report("1 已转移12户30人")
LINK = f"https://warnbot.example.org/a/{links.sign(1296, 'not-a-real-secret')}"


def contexts(inc: Incident = INCIDENT) -> dict[str, dict[str, Any]]:
    """Per template, what app.py passes it."""
    return {
        "request": {"incident": inc, "person": PEOPLE["V01"], "code": "1", "link": LINK},
        "repeat": {"incident": inc, "person": PEOPLE["V01"], "code": "2", "n": 1, "link": LINK},
        "silent": {
            "incident": inc,
            "person": PEOPLE["T01"],
            "silent": [PEOPLE["V01"], PEOPLE["V02"]],
        },
        "confirmed": {"incident": inc, "late": False, "muster": False},
        "arrived": {"incident": inc, "late": False},
        "upgrade": {
            "incident": inc,
            "person": PEOPLE["V01"],
            "code": "1",
            "link": LINK,
            "muster_min": 30,
        },
        "upgraded": {"incident": inc, "person": PEOPLE["V01"]},
        "lifted": {"incident": inc, "person": PEOPLE["V01"]},
        "duty": {"incident": inc, "person": PEOPLE["D01"], "silent": [PEOPLE["V03"]]},
        "muster_late": {"incident": inc, "person": PEOPLE["T01"], "silent": [PEOPLE["V01"]]},
        "duty_alert": {"incident": inc, "person": PEOPLE["D01"], "event": "opened", "asked": 11},
        "which": {
            "open": [
                {"code": "11", "headline": "暴雨橙色预警"},
                {"code": "12", "headline": "山洪灾害气象预警"},
            ]
        },
        "unknown": {"open": [{"code": "11", "headline": "暴雨橙色预警"}]},
        "report": {"report": REPORT, "summary": receipts.summary(REPORT)},
        "tip": {"incident": inc},
        "optout": {},
        "feed_silent": {
            "incident": None,
            "person": PEOPLE["D01"],
            "silence": Silence("示例县气象台 CAP", T0, 1830.0, "HTTP 503 from https://x.example"),
        },
    }


SMS_TEMPLATES = sorted(contexts())


def sms(name: str, language: str, **overrides: Any) -> str:
    return RENDERER.render("sms", name, language, **(contexts()[name] | overrides))


def test_every_sms_template_on_disk_is_covered_here_in_both_languages() -> None:
    for language in ("zh", "en"):
        on_disk = sorted(
            p.name.removesuffix(".j2") for p in (ROOT / "templates" / "sms" / language).glob("*.j2")
        )
        assert on_disk == SMS_TEMPLATES


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("name", SMS_TEMPLATES)
def test_each_sms_template_renders_without_leftover_markup(name: str, language: str) -> None:
    text = sms(name, language)
    assert text
    assert text == text.strip()
    assert "{{" not in text and "{%" not in text
    assert "None" not in text


def test_the_chinese_request_names_the_level_headline_person_code_and_link() -> None:
    assert sms("request", "zh") == (
        f'【Ⅱ级响应】示例县气象台发布暴雨橙色预警信号。王小川(示例)，请回复"1"确认收到，或点 {LINK}'
    )


def test_the_english_request_names_the_level_headline_person_code_and_link() -> None:
    text = sms("request", "en", person=PEOPLE["T03"])
    assert text == (
        "[Level Ⅱ response] 示例县气象台发布暴雨橙色预警信号. Alex Morgan (demo), "
        f'reply "1" to confirm, or open {LINK}'
    )


def test_the_chinese_reminder_counts_the_first_reminder_as_the_second_call() -> None:
    text = sms("repeat", "zh")
    assert text.startswith("【第2次提醒·Ⅱ级响应】示例县气象台发布暴雨橙色预警信号。")
    assert '回复"2"' in text
    assert text.endswith(LINK)


def test_the_english_reminder_names_its_number_code_and_link() -> None:
    text = sms("repeat", "en", n=2)
    assert text.startswith("[Reminder 3, Level Ⅱ]")
    assert 'reply "2"' in text
    assert text.endswith(LINK)


def test_the_chinese_silent_report_lists_everyone_silent_with_their_tier() -> None:
    assert sms("silent", "zh") == (
        "【叫应未应答】示例县气象台发布暴雨橙色预警信号：以下2人逾时未确认，请督促："
        "王小川(示例)(村级)、李春华(示例)(村级)"
    )


def test_the_english_silent_report_lists_everyone_silent_with_their_tier() -> None:
    text = sms("silent", "en", silent=[PEOPLE["T03"]])
    assert text.endswith(
        "1 not confirmed past the deadline, please follow up: Alex Morgan (demo) (township)"
    )


@pytest.mark.parametrize(("language", "marker"), [("zh", "逾时确认"), ("en", "after the deadline")])
def test_a_late_confirmation_says_it_was_recorded_late(language: str, marker: str) -> None:
    assert marker not in sms("confirmed", language, late=False)
    assert marker in sms("confirmed", language, late=True)


def test_the_which_reply_lists_every_open_code_and_headline() -> None:
    assert sms("which", "zh") == (
        '您有2条待确认预警，请回复对应编号："11" 暴雨橙色预警；"12" 山洪灾害气象预警'
    )
    assert sms("which", "en").startswith("You have 2 warnings to confirm")


def test_the_unknown_reply_lists_codes_or_says_nothing_is_waiting() -> None:
    assert '"11"' in sms("unknown", "zh")
    assert sms("unknown", "zh", open=[]) == "您当前没有待确认的预警。"
    assert sms("unknown", "en", open=[]) == "You have no warning waiting for confirmation."


# --- drills --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["request", "repeat", "silent"])
def test_a_drill_is_marked_yan_lian_in_chinese(name: str) -> None:
    drill = replace(INCIDENT, drill=True)
    assert sms(name, "zh", incident=drill).startswith("【演练】")
    assert "演练" not in sms(name, "zh")


@pytest.mark.parametrize("name", ["request", "repeat", "silent"])
def test_a_drill_is_marked_drill_in_english(name: str) -> None:
    drill = replace(INCIDENT, drill=True)
    assert sms(name, "en", incident=drill).startswith("[DRILL] ")
    assert "DRILL" not in sms(name, "en")


# --- languages -----------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["fr", "zh-TW", "pt", ""])
@pytest.mark.parametrize("name", SMS_TEMPLATES)
def test_a_language_without_templates_falls_back_to_chinese(name: str, language: str) -> None:
    assert sms(name, language) == sms(name, "zh")


def test_english_has_its_own_text() -> None:
    assert sms("request", "en") != sms("request", "zh")


def test_a_template_missing_in_every_language_is_an_error() -> None:
    with pytest.raises(jinja2.TemplatesNotFound):
        RENDERER.render("sms", "no-such-template", "en")


# --- strictness and the sandbox ------------------------------------------------------------


def test_a_missing_variable_raises_instead_of_rendering_blank() -> None:
    context = contexts()["request"]
    del context["link"]
    with pytest.raises(jinja2.UndefinedError, match="link"):
        RENDERER.render("sms", "request", "zh", **context)


def test_a_misspelt_attribute_raises() -> None:
    with pytest.raises(jinja2.UndefinedError):
        RENDERER.render("sms", "confirmed", "zh", incident={"headline_typo": "x"}, late=False)


def write(root: Path, name: str, source: str) -> Renderer:
    target = root / "sms" / "zh" / f"{name}.j2"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source, encoding="utf-8")
    return Renderer(root)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ incident.__class__.__mro__ }}",
        "{{ person.__init__.__globals__ }}",
        "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    ],
)
def test_a_hostile_template_cannot_reach_python_internals(tmp_path: Path, source: str) -> None:
    renderer = write(tmp_path, "evil", source)
    with pytest.raises(SecurityError):
        renderer.render("sms", "evil", "zh", incident=INCIDENT, person=PEOPLE["V01"])


def test_a_renderer_reads_templates_from_the_directory_it_is_given(tmp_path: Path) -> None:
    renderer = write(tmp_path, "hello", "  你好，{{ person.name }}  \n")
    assert renderer.render("sms", "hello", "zh", person=PEOPLE["V01"]) == "你好，王小川(示例)"


# --- escaping ------------------------------------------------------------------------------


def test_sms_text_is_not_html_escaped() -> None:
    inc = replace(INCIDENT, headline='暴雨 & 山洪 <橙色> "预警"')
    assert '暴雨 & 山洪 <橙色> "预警"' in sms("confirmed", "zh", incident=inc)


def test_the_ack_page_escapes_html_from_feeds_and_rosters() -> None:
    inc = replace(INCIDENT, headline="<script>alert(1)</script>")
    person = replace(PEOPLE["V01"], name="<b>王</b>")
    page = RENDERER.render(
        "web",
        "ack.html",
        "zh",
        incident=inc,
        person=person,
        confirmed=False,
        late=False,
        closed=False,
        deadline="06:45",
    )
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;王&lt;/b&gt;" in page


def test_a_silent_feed_alert_says_how_long_and_why_in_both_languages() -> None:
    zh, en = sms("feed_silent", "zh"), sms("feed_silent", "en")
    assert "示例县气象台 CAP 已30分钟无有效数据" in zh and "HTTP 503" in zh
    assert "no good data for 30 min" in en


def test_a_provider_with_its_own_templates_gets_them_and_falls_back_for_the_rest() -> None:
    aliyun = RENDERER.render("sms", "request", "zh", channel="aliyun", **contexts()["request"])
    assert "http" not in aliyun and "请回复1确认收到" in aliyun
    confirmed = RENDERER.render(
        "sms", "confirmed", "zh", channel="aliyun", **contexts()["confirmed"]
    )
    assert confirmed == sms("confirmed", "zh")


@pytest.mark.parametrize(
    ("event", "zh", "en"),
    [
        ("opened", "【值班提示·启动响应】", "[Duty alert: response opened]"),
        ("upgraded", "【值班提示·提升响应】", "[Duty alert: upgraded]"),
        ("lifted", "【值班提示·解除响应】", "[Duty alert: lifted]"),
        ("unreachable", "【值班提示·无法联系】", "[Duty alert: unreachable]"),
    ],
)
def test_each_duty_alert_names_its_event_first(event: str, zh: str, en: str) -> None:
    context = {"event": event, "people": [PEOPLE["V03"]]}
    assert sms("duty_alert", "zh", **context).startswith(zh)
    assert sms("duty_alert", "en", **context).startswith(en)
    if event == "unreachable":
        assert "赵德明(示例)(村级)" in sms("duty_alert", "zh", **context)


def test_a_tip_ends_with_the_opt_out_hint_carriers_require() -> None:
    assert sms("tip", "zh").endswith("本短信无需确认，回复TD退订")
    assert sms("tip", "en").endswith("Reply TD to unsubscribe")
