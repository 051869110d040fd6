"""Tests for warnbot.ingest.cap: real samples, hostile inputs, and arbitrary bytes."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import re
import socket
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warnbot.errors import ParseError
from warnbot.ingest.cap import best_language, parse, signal_colour
from warnbot.model import Colour, Warning

SAMPLES = Path(__file__).parent / "data" / "samples"
CAP_FILES = sorted((SAMPLES / "cap").glob("*.xml"))
BAD_FILES = sorted((SAMPLES / "bad").glob("*.xml"))
CAP12 = "urn:oasis:names:tc:emergency:cap:1.2"
CAP11 = "urn:oasis:names:tc:emergency:cap:1.1"
HEADER = {
    "identifier": "T-1",
    "sender": "test@warnbot.example",
    "sent": "2024-04-22T14:12:12+08:00",
    "status": "Actual",
    "msgType": "Alert",
    "scope": "Public",
}
INFO = (
    "<info><language>zh-CN</language><category>Met</category><event>暴雨</event>"
    "<urgency>Expected</urgency><severity>Severe</severity><certainty>Likely</certainty>"
    "<headline>{headline}</headline></info>"
)


def sample(name: str) -> Warning:
    return parse((SAMPLES / "cap" / name).read_bytes())


def alert_xml(info: str = "", namespace: str = CAP12, **fields: str | None) -> str:
    """A minimal CAP document; a field passed as None is left out."""
    values = {**HEADER, **fields}
    body = "".join(f"<{k}>{v}</{k}>" for k, v in values.items() if v is not None)
    return f'<?xml version="1.0" encoding="UTF-8"?><alert xmlns="{namespace}">{body}{info}</alert>'


def parse_error(data: bytes) -> str:
    with pytest.raises(ParseError) as caught:
        parse(data)
    return str(caught.value)


# --- every real sample -------------------------------------------------------------------


def test_sample_copies_are_byte_identical_to_the_provenance_table() -> None:
    table = (SAMPLES / "PROVENANCE.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(cap/[^`]+)` \|.*\| \d+ \| `([0-9a-f]{16})` \|", table, re.M))
    assert sorted(rows) == [f"cap/{path.name}" for path in CAP_FILES]
    for name, digest in rows.items():
        assert hashlib.sha256((SAMPLES / name).read_bytes()).hexdigest()[:16] == digest, name


@pytest.mark.parametrize("path", CAP_FILES, ids=lambda path: path.name)
def test_every_cap_sample_parses_into_a_warning_with_aware_utc_times(path: Path) -> None:
    warning = parse(path.read_bytes())
    assert warning.identifier and warning.sender and warning.scope
    assert warning.msg_type in {"Alert", "Update", "Cancel"}
    for moment in (warning.sent, warning.effective, warning.onset, warning.expires):
        assert moment is None or moment.utcoffset() == UTC.utcoffset(None)
    assert all(len(ref.split(",")) == 3 for ref in warning.references)


def test_taiwan_chain_runs_alert_update_update_cancel_each_referencing_the_previous() -> None:
    names = ["1_alert", "2_update", "3_update", "4_cancel"]
    chain = [sample(f"tw_cwa_heavyrain_{name}.xml") for name in names]
    assert [w.msg_type for w in chain] == ["Alert", "Update", "Update", "Cancel"]
    assert chain[0].references == ()
    for previous, current in itertools.pairwise(chain):
        (reference,) = current.references
        sender, identifier, _sent = reference.split(",")  # sent may be 1 s off: see PROVENANCE
        assert f"{sender},{identifier}" == previous.key


def test_taiwan_chain_keeps_the_1_second_reference_mismatch_as_written() -> None:
    update = sample("tw_cwa_heavyrain_2_update.xml")
    assert update.references == (
        "weather@cwa.gov.tw,CWA-Weather_extremely-rain_202404221405001,2024-04-22T14:12:13+08:00",
    )


def test_taiwan_cancel_still_carries_its_info_block_and_22_areas() -> None:
    cancel = sample("tw_cwa_heavyrain_4_cancel.xml")
    assert (cancel.msg_type, cancel.headline, cancel.urgency) == ("Cancel", "解除大雨特報", "Past")
    assert len(cancel.areas) == 22
    assert "63" in cancel.geocode_values()


def test_taiwan_alert_colour_comes_from_the_cap_twp_alert_color_parameter() -> None:
    chain = ["1_alert", "2_update", "3_update", "4_cancel"]
    colours = [sample(f"tw_cwa_heavyrain_{name}.xml").colour for name in chain]
    assert colours == [Colour.YELLOW, Colour.ORANGE, Colour.YELLOW, None]


def test_cma_alert_picks_zh_cn_by_default_and_reads_the_red_signal() -> None:
    warning = sample("cn_cma_penglai_heat_update_en_zh.xml")
    assert (warning.language, warning.event, warning.colour) == ("zh-CN", "高温", Colour.RED)
    assert warning.headline == "蓬莱区气象台变更发布高温红色预警信号[Ⅰ级/特别严重]"
    assert warning.sender_name == "薄晓虎"
    assert warning.areas[0].geocodes == (("CPEAS Geographic Code", "370614000000"),)
    assert warning.sent == datetime(2026, 8, 1, 5, 31, tzinfo=UTC)


def test_cma_alert_gives_the_english_block_when_english_is_asked_for() -> None:
    data = (SAMPLES / "cap" / "cn_cma_penglai_heat_update_en_zh.xml").read_bytes()
    warning = parse(data, language="en")
    assert (warning.language, warning.event, warning.colour) == (
        "en-US",
        "high temperature",
        Colour.RED,
    )
    assert warning.instruction == ""  # <instruction/> is empty, not missing


@pytest.mark.parametrize(
    ("wanted", "language", "event"),
    [
        ("zh", "zh-mo", "強烈季候風信號"),
        ("zh-CN", "zh-mo", "強烈季候風信號"),
        ("pt", "pt-PT", "VENTOS FORTES DE MONÇÃO"),
        ("EN-us", "en-US", "STRONG MONSOON SIGNAL"),
        ("fr", "zh-mo", "強烈季候風信號"),
    ],
)
def test_macao_three_language_alert_falls_back_by_language(
    wanted: str, language: str, event: str
) -> None:
    data = (SAMPLES / "cap" / "mo_smg_monsoon_update_zh_pt_en.xml").read_bytes()
    warning = parse(data, language=wanted)
    assert (warning.language, warning.event) == (language, event)


def test_macao_polygon_split_over_lines_and_tabs_becomes_one_cap_string() -> None:
    (polygon,) = sample("mo_smg_monsoon_update_zh_pt_en.xml").areas[0].polygons
    assert polygon.startswith("22.0766,113.5709 22.0766,113.6102 22.1088,113.6301")
    assert "\n" not in polygon and "\t" not in polygon and "  " not in polygon


def test_nsw_prefixed_cap_namespace_parses_like_the_default_one() -> None:
    warning = sample("au_nsw_rfs_fire_cap_prefix.xml")
    assert warning.identifier == "tag:www.rfs.nsw.gov.au2011-10-06:40184"
    assert (warning.language, warning.event, warning.category) == ("en-AU", "Fire", ("Fire", "Met"))
    assert warning.areas[0].circles == ("-35.3888,147.0598 25.0",)
    assert ("non-standard secondary event code", "structure_fire") in warning.event_codes
    assert warning.description.startswith("ALERT LEVEL: Not Applicable<br />LOCATION")


def test_usgs_iso_8859_1_alert_decodes_usulutan_and_ignores_its_signature() -> None:
    warning = sample("us_usgs_earthquake_iso8859-1.xml")
    assert "Usulután" in warning.headline and "Usulután" in warning.description
    assert warning.areas[0].description.startswith("47 miles (76 km) SSW of Usulután")
    assert warning.areas[0].circles == ("12.747,-88.783 0.0",)
    assert warning.language == ""  # no <language>: chosen as the only block
    assert ("Magnitude", "4.6") in warning.parameters


@pytest.mark.parametrize(
    ("name", "headline", "colour"),
    [
        ("tw_wra_reservoir_bom_alert.xml", "明德水庫:洩洪中", Colour.RED),
        # its 橙色 sits in a duplicated alert_title parameter, not a colour field: not read
        ("tw_wra_river_highwater_alert.xml", "鹿鳴橋:二級", None),
    ],
)
def test_utf8_bom_files_parse(name: str, headline: str, colour: Colour | None) -> None:
    assert (SAMPLES / "cap" / name).read_bytes().startswith(b"\xef\xbb\xbf")
    warning = sample(name)
    assert (warning.language, warning.headline, warning.colour) == ("zh-tw", headline, colour)


def test_crlf_bom_river_alert_keeps_the_gauge_reading_in_its_description() -> None:
    warning = sample("tw_wra_river_highwater_alert.xml")
    assert "卑南溪-鹿鳴橋水位147.63M >= 二級警戒147.6M" in warning.description
    assert "\r" not in warning.description


def test_nws_update_keeps_all_8_references_and_both_polygons_of_one_area() -> None:
    warning = sample("us_nws_hurricane_update_multipolygon.xml")
    assert len(warning.references) == 8
    assert warning.references[0] == (
        "w-nws.webmaster@noaa.gov,NWS-IDP-PROD-4410291-3675936,2020-08-25T10:32:00-05:00"
    )
    assert len(warning.areas) == 1 and len(warning.areas[0].polygons) == 2
    assert warning.sent == datetime(2020, 8, 26, 9, 14, tzinfo=UTC)


def test_cancel_without_info_parses_with_empty_event() -> None:
    warning = sample("us_athoc_cancel_noinfo_signed.xml")
    assert (warning.msg_type, warning.event, warning.language) == ("Cancel", "", "")
    assert (warning.areas, warning.colour, warning.expires) == ((), None, None)
    assert warning.references == (
        "AtHoc,1017033100951096-517189320160225203219800,2016-02-25T12:32:19-08:00",
    )


def test_canada_alert_gives_french_when_asked_and_keeps_both_references() -> None:
    data = (SAMPLES / "cap" / "ca_eccc_update_en_fr.xml").read_bytes()
    assert parse(data).language == "en-CA"  # no zh, no untagged block: the first
    assert parse(data, language="fr").language == "fr-CA"
    assert len(parse(data).references) == 2


def test_meteoalarm_colour_comes_from_awareness_level() -> None:
    france = sample("fr_meteofrance_update_fr_en.xml")
    assert (france.event, france.colour) == ("Vigilance jaune avalanches", Colour.YELLOW)
    ireland = sample("ie_meteireann_lowtemp_polygons.xml")
    assert ireland.colour == Colour.YELLOW
    assert len(ireland.areas[0].polygons) == 6 and len(ireland.areas[0].geocodes) == 26


# --- every real bad input ----------------------------------------------------------------

BAD_MESSAGES = {
    "alerts_wrapper_17.cap.xml": ["root element is <alerts>", "one CAP <alert> per document"],
    "no_namespace_errors.cap.xml": ["<info> lacks required <urgency>"],
    "not_well_formed.atom.xml": ["line 1, column 547", "invalid token", "not UTF-8"],
    "wrong_namespace.cap.xml": ["'urn:oasis:names:tc:emergency:alerts:1.2'", CAP12],
    "xxe_external_entity.cap.xml": ["DTD", "http://localhost:8080/payload1.dtd"],
}


def test_every_bad_sample_has_an_expected_message() -> None:
    assert sorted(BAD_MESSAGES) == [path.name for path in BAD_FILES]


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda path: path.name)
def test_every_bad_sample_raises_parse_error_saying_why(path: Path) -> None:
    message = parse_error(path.read_bytes())
    for fragment in BAD_MESSAGES[path.name]:
        assert fragment in message


def test_xxe_sample_is_refused_without_any_fetch_or_file_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the parser tried to fetch something")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    message = parse_error((SAMPLES / "bad" / "xxe_external_entity.cap.xml").read_bytes())
    assert "refused" in message and "root:" not in message


def test_billion_laughs_entity_bomb_is_refused_before_expansion() -> None:
    entities = ['<!ENTITY lol0 "lol">']
    entities += [f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)]
    bomb = f'<!DOCTYPE alert [{"".join(entities)}]><alert xmlns="{CAP12}">&lol9;</alert>'
    assert "DTD" in parse_error(bomb.encode())


def test_internal_entity_declaration_is_refused_too() -> None:
    doc = f'<!DOCTYPE alert [<!ENTITY x "y">]><alert xmlns="{CAP12}"><identifier>&x;</identifier>'
    assert "<!DOCTYPE alert>" in parse_error(f"{doc}</alert>".encode())


# --- inline edge cases --------------------------------------------------------------------


@pytest.mark.parametrize("field", list(HEADER))
def test_missing_required_alert_field_is_named(field: str) -> None:
    assert f"<alert> lacks required <{field}>" in parse_error(alert_xml(**{field: None}).encode())


def test_empty_required_alert_field_counts_as_missing() -> None:
    assert "lacks required <sender>" in parse_error(alert_xml(sender="  ").encode())


@pytest.mark.parametrize("field", ["sent", "effective", "onset", "expires"])
def test_bad_date_names_the_field_and_the_value(field: str) -> None:
    bad = "22/04/2024 14:12"
    info = INFO.format(headline="h").replace("</info>", f"<{field}>{bad}</{field}></info>")
    data = alert_xml(sent=bad) if field == "sent" else alert_xml(info=info)
    assert f"<{field}> is not a date-time: {bad!r}" in parse_error(data.encode())


def test_date_without_offset_is_refused_rather_than_guessed() -> None:
    message = parse_error(alert_xml(sent="2024-04-22T14:12:12").encode())
    assert "<sent> has no UTC offset" in message and "2024-04-22T14:12:12" in message


def test_z_suffix_date_is_accepted_as_utc() -> None:
    warning = parse(alert_xml(sent="2024-04-22T06:12:12Z").encode())
    assert warning.sent == datetime(2024, 4, 22, 6, 12, 12, tzinfo=UTC)


def test_status_outside_caps_list_is_refused_and_case_is_normalised() -> None:
    assert "<status> is 'Actaul'" in parse_error(alert_xml(status="Actaul").encode())
    assert parse(alert_xml(status="exercise", msgType="UPDATE").encode()).status == "Exercise"


def test_cap_1_1_namespace_is_accepted() -> None:
    warning = parse(alert_xml(info=INFO.format(headline="h"), namespace=CAP11).encode())
    assert (warning.identifier, warning.event) == ("T-1", "暴雨")


def test_alert_without_namespace_says_so() -> None:
    message = parse_error(alert_xml().replace(f' xmlns="{CAP12}"', "").encode())
    assert "<alert> with no namespace" in message


def test_empty_document_reports_line_and_column() -> None:
    assert "malformed XML at line 1, column 0: no element found" in parse_error(b"")


@pytest.mark.parametrize("encoding", ["GB2312", "GBK", "GB18030"])
def test_gb_encoded_document_is_transcoded_because_expat_cannot_read_it(encoding: str) -> None:
    text = alert_xml(info=INFO.format(headline="深圳市暴雨黄色预警信号"))
    data = text.replace('encoding="UTF-8"', f'encoding="{encoding}"').encode(encoding)
    warning = parse(data)
    assert (warning.headline, warning.colour) == ("深圳市暴雨黄色预警信号", Colour.YELLOW)


def test_gbk_bytes_labelled_utf8_get_an_encoding_hint() -> None:
    data = alert_xml(info=INFO.format(headline="暴雨蓝色预警")).encode("gbk")
    assert "is the feed really GBK" in parse_error(data)


def test_big5_bytes_that_are_not_big5_name_the_byte() -> None:
    data = b'<?xml version="1.0" encoding="big5"?><alert>\xff\xff</alert>'
    assert "bytes are not big5 as declared" in parse_error(data)


def test_unknown_declared_encoding_is_a_parse_error() -> None:
    data = alert_xml().replace("UTF-8", "x-no-such-encoding").encode()
    assert "x-no-such-encoding" in parse_error(data)


# --- language choice and colour, directly --------------------------------------------------


@pytest.mark.parametrize(
    ("languages", "wanted", "index"),
    [
        (["en-US", "zh-CN"], "zh-cn", 1),
        (["en-US", "zh-TW", "zh-CN"], "zh-CN", 2),  # exact beats prefix
        (["en-US", "zh_HK"], "zh", 1),
        (["en-US", "", "fr"], "zh", 1),  # untagged beats the first
        (["en-US", "fr"], "zh", 0),
        ([], "zh", None),
    ],
)
def test_best_language_follows_exact_prefix_untagged_first_order(
    languages: list[str], wanted: str, index: int | None
) -> None:
    assert best_language(languages, wanted) == index


@pytest.mark.parametrize(
    ("event", "headline", "parameters", "colour"),
    [
        ("", "高温橙色预警信号升级为高温红色预警信号", [], Colour.RED),  # last named wins
        ("Amber warning of rain", "", [], Colour.ORANGE),
        ("Orange Thunderstorm", "", [], Colour.ORANGE),
        ("Flood", "", [("awareness_level", "3; orange; Severe")], Colour.ORANGE),
        ("Flood", "", [("awareness_level", "1; green; Minor")], None),
        ("暴雨", "", [("alert_color", "藍色")], Colour.BLUE),
        ("Red Flag Warning", "Red Flag Warning issued by NWS", [], None),
        ("Flood Warning", "Flood Warning for Orange County", [], None),
        ("Bush Fire", "Blue Mountains bush fire", [], None),
        ("Earthquake", "EQ 4.6 Usulután", [], None),
    ],
)
def test_signal_colour_reads_only_colours_the_document_states(
    event: str, headline: str, parameters: list[tuple[str, str]], colour: Colour | None
) -> None:
    assert signal_colour(event, headline, parameters) == colour


# --- arbitrary input ---------------------------------------------------------------------

SAMPLE_BYTES = [path.read_bytes() for path in CAP_FILES]


def parses_or_raises_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        assert isinstance(parse(data), Warning)


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    parses_or_raises_parse_error(data)


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from(SAMPLE_BYTES), st.integers(min_value=0), st.binary(max_size=16))
def test_damaged_samples_parse_or_raise_parse_error(doc: bytes, at: int, junk: bytes) -> None:
    at %= len(doc) + 1
    parses_or_raises_parse_error(doc[:at] + junk + doc[at + len(junk) :])


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from(["sent", "status", "msgType", "identifier"]), st.text(max_size=40))
def test_arbitrary_field_text_parses_or_raises_parse_error(field: str, value: str) -> None:
    parses_or_raises_parse_error(alert_xml(**{field: escape(value)}).encode("utf-8", "replace"))
