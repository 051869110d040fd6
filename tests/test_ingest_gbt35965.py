"""Tests for warnbot.ingest.gbt35965: national identifiers, event codes, and their CAP wiring."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from warnbot.ingest import cap
from warnbot.ingest.gbt35965 import (
    EVENT_TYPES,
    Identifier,
    event_code,
    event_type,
    parse_identifier,
    with_national_codes,
)
from warnbot.model import Warning

ROOT = Path(__file__).resolve().parent.parent
DEMO_FEED = ROOT / "config" / "demo" / "feed" / "rainstorm_orange.xml"
CMA = Path(__file__).parent / "data" / "samples" / "cap" / "cn_cma_penglai_heat_update_en_zh.xml"
SENT = datetime(2026, 8, 14, 22, 15, tzinfo=UTC)


def warning(identifier: str, *event_codes: tuple[str, str]) -> Warning:
    return Warning(identifier, "s", SENT, "Actual", "Alert", "Public", event_codes=event_codes)


# --- identifiers ------------------------------------------------------------------------------


def test_demo_identifier_splits_into_issuer_organisation_and_beijing_entry_time() -> None:
    assert parse_identifier("44990141600000_20260815061500_1") == Identifier(
        issuer_region="449901",
        issuer_org="416",
        internal="000",
        extension="00",
        entered_at=datetime(2026, 8, 14, 22, 15, tzinfo=UTC),  # 06:15 Beijing
        sequence=1,
    )


def test_identifier_without_sequence_suffix_as_the_cma_sample_writes_it() -> None:
    parsed = parse_identifier("37061441600000_20260801133303")
    assert parsed is not None
    assert (parsed.issuer_region, parsed.issuer_org, parsed.sequence) == ("370614", "416", None)
    assert parsed.entered_at == datetime(2026, 8, 1, 5, 33, 3, tzinfo=UTC)


def test_extension_digits_and_long_sequence_are_kept() -> None:
    parsed = parse_identifier(" 35040041600001_20200421123203_12 ")
    assert parsed is not None
    assert (parsed.internal, parsed.extension, parsed.sequence) == ("000", "01", 12)


@pytest.mark.parametrize(
    "identifier",
    [
        "NWS-IDP-PROD-4412298-3677414",
        "2.49.0.1.124.6bddbc91.2012",
        "4499014160000_20260815061500_1",  # 13 digits
        "44990141600000_20261315061500_1",  # month 13
        "44990141600000_20260815061500_",
        "44990141600000-20260815061500-1",
        "４４９９０１４１６０００００_20260815061500_1",  # full-width digits
        "",
    ],
)
def test_identifiers_not_of_the_national_form_give_none(identifier: str) -> None:
    assert parse_identifier(identifier) is None


# --- the classification table -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("11B03", ("11B03", "暴雨")),
        ("11b03", ("11B03", "暴雨")),
        (" 暴雨 ", ("11B03", "暴雨")),
        ("台风", ("11B01", "台风")),
        ("11B09", ("11B09", "高温")),
        ("雷电", ("11B14", "雷电")),
        ("11", ("11000", "自然灾害")),
        ("11000", ("11000", "自然灾害")),
        ("12", ("12000", "事故灾难")),
        ("公共卫生事件", ("13000", "公共卫生事件")),
        ("14000", ("14000", "社会安全事件")),
        ("11B", ("11B00", "气象灾害")),
        ("11B00", ("11B00", "气象灾害")),
    ],
)
def test_event_type_accepts_codes_in_any_case_or_form_and_chinese_names(
    query: str, expected: tuple[str, str]
) -> None:
    assert event_type(query) == expected


@pytest.mark.parametrize("query", ["11A01", "洪水", "11B99", "15000", "11B000", "1", "", "Flood"])
def test_event_type_is_none_for_what_the_table_does_not_hold(query: str) -> None:
    assert event_type(query) is None


def test_table_codes_are_canonical_and_names_unique() -> None:
    assert all(event_type(code) == (code, name) for code, name in EVENT_TYPES.items())
    assert len(set(EVENT_TYPES.values())) == len(EVENT_TYPES)
    assert {code for code in EVENT_TYPES if code.endswith("000")} == {
        "11000",
        "12000",
        "13000",
        "14000",
    }


# --- event codes among CAP pairs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "code"),
    [
        ((("GB/T 35561", "11B03"),), "11B03"),
        ((("GB/T35561-2017", " 11b06 "),), "11B06"),
        ((("突发事件类型", "11A01"),), "11A01"),  # well-formed, not in the table: still carried
        ((("GB/T 35561", "暴雨"),), "11B03"),
        ((("SAME", "FLW"), ("profile:CAP-CP:Event:0.4", "rainfall")), ""),
        ((("other", "暴雨"),), ""),  # a name counts only where the valueName cites 35561
        ((), ""),
    ],
)
def test_event_code_finds_a_gbt_35561_code_among_event_codes(
    pairs: tuple[tuple[str, str], ...], code: str
) -> None:
    assert event_code(pairs) == code


def test_with_national_codes_leaves_a_foreign_warning_untouched() -> None:
    foreign = warning("NWS-IDP-PROD-1", ("SAME", "FLW"))
    assert with_national_codes(foreign) is foreign


def test_with_national_codes_fills_event_type_without_a_national_identifier() -> None:
    filled = with_national_codes(warning("x", ("GB/T 35561", "11B03")))
    assert (filled.issuer_region, filled.event_type) == ("", "11B03")


# --- wired into cap.parse -------------------------------------------------------------------------


def test_demo_feed_parses_to_issuer_region_449901_and_event_type_11b03() -> None:
    parsed = cap.parse(DEMO_FEED.read_bytes())
    assert (parsed.issuer_region, parsed.issuer_org, parsed.event_type) == (
        "449901",
        "416",
        "11B03",
    )


def test_real_cma_alert_names_penglai_district_as_issuer() -> None:
    parsed = cap.parse(CMA.read_bytes())
    assert (parsed.issuer_region, parsed.issuer_org, parsed.event_type) == ("370614", "416", "")


def test_foreign_cap_keeps_the_issuer_fields_empty() -> None:
    hurricane = (
        Path(__file__).parent
        / "data"
        / "samples"
        / "cap"
        / "us_nws_hurricane_update_multipolygon.xml"
    )
    parsed = cap.parse(hurricane.read_bytes())
    assert (parsed.issuer_region, parsed.issuer_org, parsed.event_type) == ("", "", "")
