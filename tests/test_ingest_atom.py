"""Tests for warnbot.ingest.atom: Atom and RSS indexes of CAP, inline CAP, hostile input."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warnbot.errors import ParseError
from warnbot.ingest import cap
from warnbot.ingest.atom import Entry, feed_time, parse
from warnbot.model import Warning

SAMPLES = Path(__file__).parent / "data" / "samples"
ATOM_FILES = sorted((SAMPLES / "atom").glob("*.xml"))
NWS = "nws_us_atom_cap11_2018.xml"
NWS_FIRST = (
    "https://alerts.weather.gov/cap/wwacapget.php?x=AK125AB652A170.HighWindWarning."
    "125AB660BDF0AK.AFGNPWNSB.e9d4afdcacb3b7015f58bccc1db60d46"
)
CAP11 = "urn:oasis:names:tc:emergency:cap:1.1"


def sample(name: str) -> list[Entry]:
    return parse((SAMPLES / "atom" / name).read_bytes())


def atom_doc(entries: str) -> bytes:
    head = f'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:cap="{CAP11}"><id>f</id>'
    return f"{head}{entries}</feed>".encode()


def rss_doc(items: str) -> bytes:
    return f'<rss version="2.0" xmlns:cap="{CAP11}"><channel>{items}</channel></rss>'.encode()


def parse_error(data: bytes) -> str:
    with pytest.raises(ParseError) as caught:
        parse(data)
    return str(caught.value)


def inline_error(entry: Entry) -> str:
    with pytest.raises(ParseError) as caught:
        entry.warning()
    return str(caught.value)


INLINE = (
    "<entry><id>e1</id><updated>2024-04-22T14:12:12+08:00</updated>"
    "<author><name>author@example</name></author><title>暴雨黄色预警</title>"
    "<cap:event>暴雨</cap:event><cap:status>{status}</cap:status><cap:msgType>Alert</cap:msgType>"
    "</entry>"
)


# --- the legacy NWS national index ---------------------------------------------------------


def test_nws_index_has_163_entries_with_distinct_ids_and_a_link_each() -> None:
    entries = sample(NWS)
    assert len(entries) == 163
    assert len({entry.id for entry in entries}) == 163
    assert all(entry.link == entry.id for entry in entries)  # NWS links to the id it names


def test_nws_entry_times_become_utc() -> None:
    first = sample(NWS)[0]
    assert first.id == NWS_FIRST
    assert first.updated == first.published == datetime(2018, 8, 15, 22, 52, tzinfo=UTC)


def test_nws_inline_cap_builds_a_warning_with_id_author_and_published_standing_in() -> None:
    warning = sample(NWS)[0].warning()
    assert warning is not None
    assert (warning.identifier, warning.sender) == (NWS_FIRST, "w-nws.webmaster@noaa.gov")
    assert warning.sent == datetime(2018, 8, 15, 22, 52, tzinfo=UTC)
    assert (warning.status, warning.msg_type, warning.scope) == ("Actual", "Alert", "Public")
    assert (warning.event, warning.severity, warning.category) == (
        "High Wind Warning",
        "Severe",
        ("Met",),
    )
    assert warning.expires == datetime(2018, 8, 16, 15, 0, tzinfo=UTC)
    assert warning.areas[0].description == "Eastern Beaufort Sea Coast"
    assert warning.areas[0].geocodes == (("FIPS6", "002185"), ("UGC", "AKZ204"))
    assert warning.areas[0].polygons == ()  # <cap:polygon></cap:polygon> is no polygon
    assert warning.parameters == (("VTEC", "/O.CON.PAFG.HW.W.0011.180816T0000Z-180816T1500Z/"),)
    assert warning.description.startswith("...HIGH WIND WARNING REMAINS IN EFFECT")


def test_nws_geocode_value_with_several_codes_is_split_into_one_pair_per_code() -> None:
    entry = next(e for e in sample(NWS) if e.field("areaDesc") == "Butler; Crenshaw")
    assert entry.geocodes == (
        ("FIPS6", "001013"),
        ("FIPS6", "001041"),
        ("UGC", "ALZ057"),
        ("UGC", "ALZ058"),
    )
    assert entry.polygons[0].startswith("31.62,-86.35 31.59,-86.5")
    assert entry.parameters == (("VTEC", ""),)  # an empty value is kept as written


def test_every_nws_entry_gives_a_warning_and_99_carry_a_polygon() -> None:
    warnings = [entry.warning() for entry in sample(NWS)]
    assert all(isinstance(warning, Warning) for warning in warnings)
    assert sum(bool(w.areas[0].polygons) for w in warnings if w) == 99


# --- MeteoAlarm legacy Atom ----------------------------------------------------------------


def test_meteoalarm_link_is_the_cap_typed_one_not_the_untyped_first_link() -> None:
    entry = sample("meteoalarm_france_legacy_atom.xml")[0]
    assert entry.link == (
        "https://feeds.meteoalarm.org/api/v1/warnings/feeds-france/"
        "04d497d4-d114-4d6b-93ba-13fa7ed577fe"
    )
    assert entry.id.endswith("?index_info=1&index_area=5&index_geocode=0")


def test_meteoalarm_has_12_area_entries_pointing_at_2_cap_documents() -> None:
    entries = sample("meteoalarm_france_legacy_atom.xml")
    assert len({e.id for e in entries}) == 12
    assert len({e.link for e in entries}) == 2


def test_meteoalarm_message_type_spelling_and_atom_namespaced_geocode_are_read() -> None:
    warning = sample("meteoalarm_france_legacy_atom.xml")[0].warning()
    assert warning is not None
    assert warning.identifier == "2.49.0.0.250.0.FR.20221207160058.764028"
    assert (warning.msg_type, warning.scope, warning.sender) == (
        "Alert",
        "Public",
        "meteoalarm.org",
    )
    assert warning.sent == datetime(2022, 12, 7, 15, 0, 58, tzinfo=UTC)
    assert warning.onset == datetime(2022, 12, 7, 15, 0, tzinfo=UTC)
    assert warning.areas[0].geocodes == (("NUTS3", "FR718"),)
    assert warning.headline == "Yellow Avalanches Warning issued for France - Haute Savoie"


# --- WMO RSS 2.0 ---------------------------------------------------------------------------


def test_wmo_rss_item_gives_guid_link_and_rfc822_pubdate() -> None:
    (entry,) = sample("wmo_au_bom_rss.xml")
    assert entry.id == "AusBoM-IDW20100-2026-01-01T05:01:02+00:00"
    assert entry.link.endswith("/02-dc6fc32e272f13d57f3fb683aa6bd3b8.xml")
    assert entry.published == datetime(2026, 1, 1, 5, 9, 13, tzinfo=UTC)
    assert entry.updated is None


def test_wmo_rss_inline_fields_are_too_few_so_the_cap_document_must_be_fetched() -> None:
    (entry,) = sample("wmo_au_bom_rss.xml")
    assert (entry.field("event"), entry.field("severity")) == ("Wind", "Moderate")
    assert feed_time("expires", entry.field("expires")) == datetime(2026, 1, 1, 16, tzinfo=UTC)
    assert entry.warning() is None


def test_rss_enclosure_of_type_cap_wins_over_the_item_link() -> None:
    item = (
        "<item><guid>g</guid><link>https://example.org/page</link>"
        '<enclosure url="https://example.org/a.cap" type="application/cap+xml"/></item>'
    )
    assert parse(rss_doc(item))[0].link == "https://example.org/a.cap"


def test_rss_item_without_guid_is_keyed_by_its_link() -> None:
    (entry,) = parse(rss_doc("<item><link>https://example.org/a.cap</link></item>"))
    assert entry.id == entry.link == "https://example.org/a.cap"


# --- links, ids and times inline ------------------------------------------------------------


def test_atom_self_link_is_not_taken_for_the_cap_document() -> None:
    entry = '<entry><id>e</id><link rel="self" href="https://example.org/feed"/></entry>'
    assert parse(atom_doc(entry))[0].link == ""


def test_empty_index_is_an_empty_list() -> None:
    assert parse(atom_doc("")) == []
    assert parse(rss_doc("")) == []


def test_entry_without_inline_cap_gives_no_warning() -> None:
    assert parse(atom_doc("<entry><id>e</id></entry>"))[0].warning() is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2018-08-15T14:52:00-08:00", datetime(2018, 8, 15, 22, 52, tzinfo=UTC)),
        ("2014-05-10T02:19:38-00:00", datetime(2014, 5, 10, 2, 19, 38, tzinfo=UTC)),
        ("Thu, 01 Jan 2026 16:00:00 +0800", datetime(2026, 1, 1, 8, tzinfo=UTC)),
        ("Thu, 01 Jan 2026 16:00:00 -0000", datetime(2026, 1, 1, 16, tzinfo=UTC)),
    ],
)
def test_feed_time_reads_rfc3339_and_rfc822_as_utc(raw: str, expected: datetime) -> None:
    assert feed_time("updated", raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("2018-08-15T14:52:00", "<updated> has no UTC offset"),
        ("yesterday", "<updated> is not a date-time: 'yesterday'"),
        ("0001-01-01T00:00:00+08:00", "<updated> is out of range in UTC"),
    ],
)
def test_feed_time_refuses_naive_garbled_and_out_of_range_times(raw: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        feed_time("updated", raw)


def test_cap_sent_out_of_range_in_utc_is_a_parse_error_not_an_overflow() -> None:
    alert = (
        '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>i</identifier>'
        "<sender>s</sender><sent>0001-01-01T00:00:00+08:00</sent><status>Actual</status>"
        "<msgType>Alert</msgType><scope>Public</scope></alert>"
    )
    with pytest.raises(ParseError, match="<sent> is out of range in UTC"):
        cap.parse(alert.encode())


# --- inline CAP that cannot stand ----------------------------------------------------------


def test_inline_status_outside_caps_list_is_refused_when_the_warning_is_built() -> None:
    (entry,) = parse(atom_doc(INLINE.format(status="Actaul")))
    assert "<status> is 'Actaul'" in inline_error(entry)


def test_inline_cap_without_sender_or_author_is_refused() -> None:
    entry = INLINE.format(status="Actual").replace(
        "<author><name>author@example</name></author>", ""
    )
    assert "no sender" in inline_error(parse(atom_doc(entry))[0])


def test_inline_cap_without_any_time_for_sent_is_refused() -> None:
    entry = INLINE.format(status="Actual").replace(
        "<updated>2024-04-22T14:12:12+08:00</updated>", ""
    )
    assert "no sent" in inline_error(parse(atom_doc(entry))[0])


def test_inline_warning_with_gbt_identifier_fills_the_issuer() -> None:
    entry = INLINE.format(status="Actual").replace(
        "<cap:event>", "<cap:identifier>44990141600000_20260815061500_1</cap:identifier><cap:event>"
    )
    warning = parse(atom_doc(entry))[0].warning()
    assert warning is not None
    assert (warning.issuer_region, warning.issuer_org) == ("449901", "416")


# --- bad and hostile documents -------------------------------------------------------------


def test_not_well_formed_pelmorex_feed_says_where_and_suspects_the_encoding() -> None:
    message = parse_error((SAMPLES / "bad" / "not_well_formed.atom.xml").read_bytes())
    assert "malformed XML at line 1, column 547" in message and "not UTF-8" in message


def test_a_cap_document_is_not_an_index() -> None:
    data = (SAMPLES / "cap" / "tw_cwa_heavyrain_1_alert.xml").read_bytes()
    assert "root element is <alert>; expected an Atom <feed> or RSS <rss>" in parse_error(data)


def test_entity_declarations_are_refused() -> None:
    bomb = '<!DOCTYPE feed [<!ENTITY x "y">]><feed xmlns="http://www.w3.org/2005/Atom">&x;</feed>'
    assert "DTD" in parse_error(bomb.encode())


def test_external_entity_sample_is_refused() -> None:
    assert "refused" in parse_error((SAMPLES / "bad" / "xxe_external_entity.cap.xml").read_bytes())


def test_atom_entry_without_id_is_refused_with_its_index() -> None:
    assert "entry 1 has no <id>" in parse_error(atom_doc("<entry><id>a</id></entry><entry/>"))


def test_rss_item_without_guid_or_link_is_refused() -> None:
    assert "item 0 has neither <guid> nor <link>" in parse_error(rss_doc("<item/>"))


def test_garbled_entry_time_names_the_entry() -> None:
    data = atom_doc("<entry><id>a</id><updated>soon</updated></entry>")
    assert "entry 0: <updated> is not a date-time: 'soon'" in parse_error(data)


# --- arbitrary input ------------------------------------------------------------------------

SAMPLE_BYTES = [path.read_bytes() for path in ATOM_FILES]


def parses_or_raises_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        for entry in parse(data):
            assert entry.warning() is None or isinstance(entry.warning(), Warning)


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    parses_or_raises_parse_error(data)


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(SAMPLE_BYTES), st.integers(min_value=0), st.binary(max_size=16))
def test_damaged_samples_parse_or_raise_parse_error(doc: bytes, at: int, junk: bytes) -> None:
    at %= len(doc) + 1
    parses_or_raises_parse_error(doc[:at] + junk + doc[at + len(junk) :])


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(["status", "msgType", "sent", "expires", "urgency"]), st.text(max_size=40))
def test_arbitrary_inline_field_text_gives_a_warning_or_parse_error(field: str, value: str) -> None:
    inline = f"<cap:{field}>{escape(value)}</cap:{field}>"
    entry = f"<entry><id>e</id><author><name>a</name></author>{inline}"
    body = "<cap:event>x</cap:event><cap:status>Actual</cap:status><cap:msgType>Alert</cap:msgType>"
    parses_or_raises_parse_error(atom_doc(entry + body + "</entry>"))
