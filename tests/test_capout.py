"""Tests for warnbot.capout: schema-valid CAP 1.2 out, read back identically by our own parser."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import xmlschema
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import incident
from warnbot.capout import (
    BEIJING,
    GRADING,
    NATIONAL_IDENTIFIER,
    CapChain,
    Grading,
    Issuer,
    category,
    follow,
    grading,
    to_cap,
)
from warnbot.ingest.cap import parse
from warnbot.model import Colour, Incident, Level

SCHEMA = xmlschema.XMLSchema(Path(__file__).parent / "data" / "cap12.xsd")
NOW = datetime(2026, 7, 1, 16, 30, 5, 123456, tzinfo=UTC)  # 2026-07-02 00:30:05 in Beijing
ISSUER = Issuer(sender="yjglj@449901.example", issuer_region="449901", issuer_org="361")
POLYGON = "23.10,113.20 23.25,113.31 23.02,113.44 23.10,113.20"
PREVIOUS = "yjglj@449901.example,44990136100000_20260701120000_0,2026-07-01T12:00:00+08:00"
XML_ILLEGAL = ["\x00", "\x08", "\x0b", "\x0c", "\x1f", "\ud800", "\udfff", "\ufffe", "\uffff"]


def write(inc: Incident, **overrides: object) -> bytes:
    """to_cap with the test issuer; an Update referencing PREVIOUS unless told otherwise."""
    kwargs: dict[str, object] = {
        "sender": ISSUER.sender,
        "issuer_region": ISSUER.issuer_region,
        "issuer_org": ISSUER.issuer_org,
        "sequence": 0,
        "msg_type": "Update",
        "references": (PREVIOUS,),
        "now": NOW,
    }
    return to_cap(inc, **(kwargs | overrides))  # type: ignore[arg-type]


def assert_valid(document: bytes) -> None:
    SCHEMA.validate(document.decode("utf-8"))


# --- schema validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "msg_type", "drill", "polygons"),
    list(itertools.product(Level, ["Alert", "Update", "Cancel"], [False, True], [(), (POLYGON,)])),
)
def test_every_document_validates_against_the_oasis_xsd(
    level: Level, msg_type: str, drill: bool, polygons: tuple[str, ...]
) -> None:
    """Each level × msgType × drill × with/without polygon is valid CAP 1.2."""
    inc = replace(incident(NOW, level=level), drill=drill)
    refs = () if msg_type == "Alert" else (PREVIOUS,)
    document = write(inc, msg_type=msg_type, references=refs, area_polygons=polygons)
    assert_valid(document)


def test_optional_fields_validate_too() -> None:
    """contact, web, a village code, several polygons and an explicit status are still valid."""
    inc = replace(incident(NOW, region="449901001001"), headline="")
    square = "0,0 0,1 1,1 1,0 0,0"
    document = write(
        inc,
        contact="值班室 0000-0000000",
        web="https://warnbot.example/incidents/7",
        status="Test",
        area_polygons=(POLYGON, square),
        area_desc="示例县示例镇示例村",
        sender_name="示例县应急管理局",
    )
    assert_valid(document)


def test_the_schema_has_teeth() -> None:
    """The XSD refuses a fractional-seconds <sent>, so the validation above means something."""
    document = write(incident(NOW)).replace(b"+08:00</sent>", b".5+08:00</sent>")
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        assert_valid(document)


def test_document_is_utf8_in_the_cap_12_namespace() -> None:
    document = write(incident(NOW))
    assert document.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n")
    assert b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">' in document
    assert "暴雨".encode() in document


# --- round trip through warnbot.ingest.cap ------------------------------------------------

XML_CHARS = st.characters(codec="utf-8").filter(lambda c: c in "\t\n\r" or c >= " ")
SPECIAL = st.sampled_from(["&", "<", ">", "]]>", '"', "'", "&amp;", "暴雨", "Ⅱ级", "🌀", "🇨🇳"])
HEADLINES = st.lists(st.one_of(XML_CHARS, SPECIAL), max_size=40).map("".join)
TIMES = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [UTC, BEIJING, timezone(timedelta(hours=-9, minutes=-30)), ZoneInfo("Asia/Shanghai")]
    ),
)
POINTS = st.tuples(st.integers(-9000, 9000), st.integers(-18000, 18000)).map(
    lambda p: f"{p[0] / 100:.2f},{p[1] / 100:.2f}"
)
POLYGONS = st.lists(POINTS, min_size=3, max_size=8).map(lambda ps: " ".join([*ps, ps[0]]))


def read_back_as_parsers_do(text: str) -> str:
    """What any XML parser and then our parser's strip() make of text: CR/CRLF read as LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


@given(
    level=st.sampled_from(Level),
    headline=HEADLINES,
    sequence=st.integers(0, 9),
    now=TIMES,
    msg_type=st.sampled_from(["Alert", "Update", "Cancel"]),
    polygons=st.lists(POLYGONS, max_size=3),
    hazard=st.sampled_from(["暴雨", "台风", "山洪 & <泥石流>", "森林火灾", "地震"]),
)
def test_round_trip_through_our_parser(
    level: Level,
    headline: str,
    sequence: int,
    now: datetime,
    msg_type: str,
    polygons: list[str],
    hazard: str,
) -> None:
    """parse(to_cap(...)) gives back every field warnbot writes."""
    inc = replace(incident(NOW, level=level), headline=headline, hazard=hazard)
    refs = () if msg_type == "Alert" else (PREVIOUS,)
    options = {"sequence": sequence, "now": now, "msg_type": msg_type, "references": refs}
    w = parse(write(inc, **options, area_polygons=polygons))
    beijing = now.astimezone(BEIJING)
    assert w.identifier == f"44990136100000_{beijing:%Y%m%d%H%M%S}_{sequence}"
    assert (w.sender, w.status, w.msg_type, w.scope) == (
        ISSUER.sender,
        "Actual",
        msg_type,
        "Public",
    )
    # via UTC: PEP 495 makes a time in a DST fold unequal to every other zone's
    assert w.sent == now.replace(microsecond=0).astimezone(UTC)
    assert w.references == refs
    assert (w.event, w.headline) == (hazard, read_back_as_parsers_do(headline))
    assert (w.severity, w.urgency, w.certainty) == grading(level, msg_type)[:3]
    assert w.colour is level.colour
    [area] = w.areas
    assert area.geocodes == (("行政区划代码", "449901"),)
    assert area.polygons == tuple(polygons)
    assert ("应急响应级别", f"{level.roman}级") in w.parameters


def test_colour_comes_from_the_level_not_the_headline() -> None:
    """A headline naming another colour does not change what a receiver reads."""
    inc = replace(incident(NOW, level=Level.I), headline="蓝色预警升级为橙色预警")
    assert parse(write(inc)).colour is Colour.RED


def test_parser_reads_the_issuer_out_of_the_identifier() -> None:
    """warnbot's GB/T 35965.1 identifier parsing recovers the issuer we wrote."""
    w = parse(write(incident(NOW)))
    assert (w.issuer_region, w.issuer_org) == ("449901", "361")


def test_drill_publishes_as_exercise_even_when_asked_for_actual() -> None:
    inc = replace(incident(NOW), drill=True)
    document = write(inc, status="Actual")
    w = parse(document)
    assert w.status == "Exercise"
    assert "<note>【演练】</note>".encode() in document
    assert w.description.startswith("【演练】")


# --- identifier and time ------------------------------------------------------------------


def test_identifier_is_the_national_form_in_beijing_time() -> None:
    """16:30:05Z on 1 July is 00:30:05 on 2 July in Beijing: the date in the identifier moves."""
    w = parse(write(incident(NOW), sequence=3))
    match = NATIONAL_IDENTIFIER.fullmatch(w.identifier)
    assert match is not None
    assert len(w.identifier) == 31  # GB/T 35965.1 A.1.1
    assert match.groupdict() == {
        "region": "449901",
        "org": "361",
        "unit": "000",
        "ext": "00",
        "entered": "20260702003005",
        "n": "3",
    }
    assert b"<sent>2026-07-02T00:30:05+08:00</sent>" in write(incident(NOW))


def test_beijing_time_ignores_shanghai_1980s_daylight_saving() -> None:
    """北京时间 is always +08:00; the Asia/Shanghai zone had DST in 1986-91."""
    summer_1988 = datetime(1988, 7, 1, 4, 0, tzinfo=UTC)
    assert b"<sent>1988-07-01T12:00:00+08:00</sent>" in write(incident(NOW), now=summer_1988)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sequence", 10),
        ("sequence", -1),
        ("issuer_region", "44990"),
        ("issuer_region", "４４９９０１"),
        ("issuer_org", "36a"),
        ("now", datetime(2026, 7, 1, 12, 0)),
    ],
)
def test_identifier_parts_are_checked(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field if field != "now" else "timezone-aware"):
        write(incident(NOW), **{field: value})


# --- what to_cap refuses ------------------------------------------------------------------


@pytest.mark.parametrize("char", XML_ILLEGAL, ids=[f"U+{ord(c):04X}" for c in XML_ILLEGAL])
def test_text_xml_cannot_carry_is_refused_not_stripped(char: str) -> None:
    """A control character or lone surrogate in the headline is a ValueError naming the field."""
    inc = replace(incident(NOW), headline=f"暴雨{char}预警")
    with pytest.raises(ValueError, match=rf"<headline> cannot carry U\+{ord(char):04X}"):
        write(inc)


@pytest.mark.parametrize("field", ["contact", "web", "area_desc", "sender_name", "description"])
def test_every_text_field_is_checked(field: str) -> None:
    with pytest.raises(ValueError, match=r"XML 1\.0 forbids"):
        write(incident(NOW), **{field: "a\x00b"})


def test_carriage_returns_are_written_as_line_feeds() -> None:
    inc = replace(incident(NOW), headline="第一行\r\n第二行\r第三行")
    assert parse(write(inc)).headline == "第一行\n第二行\n第三行"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"msg_type": "Ack"}, "msg_type"),
        ({"status": "actual"}, "status"),
        ({"msg_type": "Update", "references": ()}, "must reference"),
        ({"msg_type": "Cancel", "references": ()}, "must reference"),
        ({"references": ("only-an-identifier",)}, "sender,identifier,sent"),
        ({"references": ("a,b,2026-07-01 12:00:00",)}, "sender,identifier,sent"),
        ({"sender": "应急 管理局"}, "sender"),
        ({"sender": "a,b"}, "sender"),
        ({"sender": ""}, "sender"),
        ({"language": "zh_CN"}, "language"),
        ({"area_polygons": ("23.1,113.2 23.2,113.3 23.1,113.2",)}, "polygon"),
        ({"area_polygons": ("23.1,113.2 23.2,113.3 23.0,113.4 23.3,113.2",)}, "polygon"),
        ({"area_polygons": ("91,0 0,1 1,1 91,0",)}, "polygon"),
        ({"area_polygons": ("a,b c,d e,f a,b",)}, "polygon"),
    ],
)
def test_what_cap_refuses_is_a_value_error(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write(incident(NOW), **overrides)


@pytest.mark.parametrize("region", ["4499", "44990100", "abcdef"])
def test_region_code_must_be_a_division_code(region: str) -> None:
    with pytest.raises(ValueError, match="region_code"):
        write(incident(NOW, region=region))


def test_empty_hazard_is_refused() -> None:
    """<event> is required: an empty one would be written as absent and fail every receiver."""
    with pytest.raises(ValueError, match="<event>"):
        write(replace(incident(NOW), hazard=""))


# --- the level mapping --------------------------------------------------------------------


def test_level_mapping_is_the_documented_one() -> None:
    documented = {
        Level.I: Grading("Extreme", "Immediate", "Observed", "Execute"),
        Level.II: Grading("Severe", "Immediate", "Likely", "Execute"),
        Level.III: Grading("Moderate", "Expected", "Likely", "Prepare"),
        Level.IV: Grading("Minor", "Expected", "Possible", "Monitor"),
    }
    assert documented == GRADING


def test_cancel_is_past_and_all_clear_with_the_level_severity() -> None:
    assert grading(Level.II, "Cancel") == Grading("Severe", "Past", "Likely", "AllClear")
    assert b"<responseType>AllClear</responseType>" in write(incident(NOW), msg_type="Cancel")


@pytest.mark.parametrize(
    ("hazard", "expected"),
    [("暴雨", "Met"), ("台风", "Met"), ("山洪", "Met"), ("地震", "Geo"), ("地质灾害", "Geo"),
     ("森林火灾", "Fire"), ("火山", "Geo")],
)  # fmt: skip
def test_category_follows_the_hazard(hazard: str, expected: str) -> None:
    assert category(hazard) == expected


# --- the lifecycle ------------------------------------------------------------------------


def test_chain_follows_the_incident_lifecycle() -> None:
    """open → upgrade → downgrade → lift is Alert, Update, Update, Cancel, each referencing
    the previous document, and each one valid and readable."""
    inc = incident(NOW, level=Level.III)
    steps = [("open", Level.III), ("upgrade", Level.I), ("downgrade", Level.II), ("lift", Level.II)]
    chain = CapChain(ISSUER)
    for minute, (transition, level) in enumerate(steps):
        now = NOW + timedelta(minutes=minute)
        chain = chain.follow(replace(inc, level=level), transition, now=now)
    docs = chain.documents
    assert [d.msg_type for d in docs] == ["Alert", "Update", "Update", "Cancel"]
    warnings = [parse(d.xml) for d in docs]
    assert warnings[0].references == ()
    for before, after, doc in zip(docs, warnings[1:], docs[1:], strict=False):
        assert after.references == (before.reference,)
        assert doc.identifier == after.identifier
    for doc, w, (_, level) in zip(docs, warnings, steps, strict=True):
        assert_valid(doc.xml)
        assert doc.reference == f"{w.sender},{w.identifier},{doc.sent}"
        assert w.colour is level.colour


def test_reference_triple_carries_beijing_sent_time() -> None:
    doc = follow(incident(NOW), "open", issuer=ISSUER, previous=None, now=NOW)
    assert doc.reference == (
        "yjglj@449901.example,44990136100000_20260702003005_0,2026-07-02T00:30:05+08:00"
    )


def test_nothing_follows_a_lift() -> None:
    chain = CapChain(ISSUER).follow(incident(NOW), "open", now=NOW)
    chain = chain.follow(incident(NOW), "lift", now=NOW + timedelta(minutes=1))
    with pytest.raises(ValueError, match="lifted"):
        chain.follow(incident(NOW), "upgrade", now=NOW + timedelta(minutes=2))


def test_a_second_document_in_the_same_second_needs_the_next_sequence() -> None:
    chain = CapChain(ISSUER).follow(incident(NOW), "open", now=NOW)
    with pytest.raises(ValueError, match="next sequence"):
        chain.follow(incident(NOW, level=Level.I), "upgrade", now=NOW)
    chain = chain.follow(incident(NOW, level=Level.I), "upgrade", now=NOW, sequence=1)
    assert chain.documents[-1].identifier.endswith("_1")


@pytest.mark.parametrize(
    ("transition", "previous", "message"),
    [
        ("open", PREVIOUS, "needs no previous"),
        ("upgrade", None, "needs a previous"),
        ("lift", None, "needs a previous"),
        ("escalate", None, "unknown transition"),
    ],
)
def test_follow_checks_the_transition(transition: str, previous: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        follow(incident(NOW), transition, issuer=ISSUER, previous=previous, now=NOW)


def test_identifier_pattern_rejects_other_shapes() -> None:
    for text in ["37061441600000_20260801133303", "4499013610000_20260702003005_0", "x" * 31]:
        assert NATIONAL_IDENTIFIER.fullmatch(text) is None
    assert re.fullmatch(r"\d{14}_\d{14}_\d", parse(write(incident(NOW))).identifier)
