"""Tests for warnbot.ingest.geojson: NWS alert GeoJSON → Warnings, geometry, bad input."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warnbot.errors import ParseError
from warnbot.ingest.geojson import parse
from warnbot.model import Warning

SAMPLES = Path(__file__).parent / "data" / "samples" / "geojson"
FLOOD_WATCH = SAMPLES / "nws_alerts_active_zone_ORZ004.json"
PHOENIX = SAMPLES / "nws_alerts_point_phoenix.json"
NWS = "w-nws.webmaster@noaa.gov"
SQUARE = [[-112.0, 33.0], [-111.5, 33.0], [-111.5, 33.5], [-112.0, 33.5], [-112.0, 33.0]]


def sample_doc(path: Path = PHOENIX) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_bytes())
    return doc


def feature(**properties: Any) -> dict[str, Any]:
    """The Phoenix Air Quality Alert feature, with properties overridden (None deletes)."""
    one: dict[str, Any] = copy.deepcopy(sample_doc()["features"][1])
    for name, value in properties.items():
        if value is None:
            one["properties"].pop(name, None)
        else:
            one["properties"][name] = value
    return one


def encoded(doc: object) -> bytes:
    return json.dumps(doc).encode()


def parse_error(data: bytes) -> str:
    with pytest.raises(ParseError) as caught:
        parse(data)
    return str(caught.value)


# --- real samples ---------------------------------------------------------------------------


def test_flood_watch_update_keeps_its_4_references_as_cap_triples() -> None:
    (warning,) = parse(FLOOD_WATCH.read_bytes())
    assert (warning.msg_type, warning.event) == ("Update", "Flood Watch")
    assert warning.references == (
        f"{NWS},NWS-IDP-PROD-3964821-3368352,2019-12-19T12:52:00-08:00",
        f"{NWS},NWS-IDP-PROD-3965324-3368680,2019-12-20T01:47:00-08:00",
        f"{NWS},NWS-IDP-PROD-3965155-3368578,2019-12-19T21:23:00-08:00",
        f"{NWS},NWS-IDP-PROD-3963421-3367361,2019-12-18T12:29:00-08:00",
    )


def test_flood_watch_fields_map_onto_cap_names_with_utc_times() -> None:
    (warning,) = parse(FLOOD_WATCH.read_bytes())
    assert (warning.identifier, warning.sender) == ("NWS-IDP-PROD-3965873-3369046", NWS)
    assert (warning.status, warning.scope, warning.category) == ("Actual", "Public", ("Met",))
    assert (warning.urgency, warning.severity, warning.certainty) == (
        "Future",
        "Severe",
        "Possible",
    )
    assert warning.sent == datetime(2019, 12, 20, 21, 34, tzinfo=UTC)
    assert warning.expires == datetime(2019, 12, 21, 13, 30, tzinfo=UTC)
    assert warning.sender_name == "NWS Portland OR"
    assert warning.instruction.startswith("A Flood Watch means there is a potential")


def test_flood_watch_geocodes_become_27_ugc_and_same_pairs_and_no_polygon() -> None:
    (warning,) = parse(FLOOD_WATCH.read_bytes())
    (area,) = warning.areas
    assert area.description.startswith("North Oregon Coast; Greater Portland Metro Area")
    assert len(area.geocodes) == 27 and area.geocodes[0] == ("UGC", "ORZ001")
    assert ("SAME", "041051") in area.geocodes
    assert area.polygons == ()  # geometry null: a zone-based alert


def test_flood_watch_parameter_lists_become_one_pair_per_value() -> None:
    (warning,) = parse(FLOOD_WATCH.read_bytes())
    blocked = [value for name, value in warning.parameters if name == "BLOCKCHANNEL"]
    assert blocked == ["CMAS", "EAS", "NWEM"]
    assert ("VTEC", "/O.CON.KPQR.FA.A.0004.000000T0000Z-191222T1800Z/") in warning.parameters


def test_phoenix_collection_gives_an_update_with_a_reference_and_an_alert_without() -> None:
    heat, air = parse(PHOENIX.read_bytes())
    assert (heat.event, heat.msg_type, len(heat.references)) == (
        "Excessive Heat Warning",
        "Update",
        1,
    )
    assert (
        heat.identifier == "urn:oid:2.49.0.1.840.0.505a7220d91b00eb1d75a3fb4f339f825496a522.004.1"
    )
    assert heat.onset == datetime(2024, 7, 19, 17, tzinfo=UTC)
    assert (air.event, air.msg_type, air.references) == ("Air Quality Alert", "Alert", ())
    assert (air.instruction, air.severity) == ("", "Unknown")  # "instruction": null


def test_a_single_feature_parses_like_a_collection_of_one() -> None:
    (warning,) = parse(encoded(feature()))
    assert warning == parse(PHOENIX.read_bytes())[1]


def test_empty_collection_is_an_empty_list() -> None:
    assert parse(b'{"type": "FeatureCollection", "features": []}') == []


# --- geometry -------------------------------------------------------------------------------


def test_polygon_positions_are_swapped_to_cap_lat_lon() -> None:
    one = feature()
    one["geometry"] = {"type": "Polygon", "coordinates": [SQUARE]}
    (warning,) = parse(encoded(one))
    assert warning.areas[0].polygons == ("33,-112 33,-111.5 33.5,-111.5 33.5,-112 33,-112",)


def test_multipolygon_gives_one_cap_polygon_per_part_and_drops_holes() -> None:
    hole = [[-111.9, 33.1], [-111.8, 33.1], [-111.8, 33.2], [-111.9, 33.1]]
    one = feature()
    one["geometry"] = {"type": "MultiPolygon", "coordinates": [[SQUARE, hole], [SQUARE]]}
    (warning,) = parse(encoded(one))
    assert len(warning.areas[0].polygons) == 2
    assert "33.1" not in warning.areas[0].polygons[0]


def test_small_coordinates_are_written_without_exponent() -> None:
    ring = [[0.00001, 0.0], [1.0, 0.0], [1.0, 1.0], [0.00001, 0.0]]
    one = feature()
    one["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    assert parse(encoded(one))[0].areas[0].polygons[0].startswith("0,0.00001 ")


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "Point", "coordinates": [-112, 33]}, "is not a Polygon or MultiPolygon"),
        ({"type": "Polygon", "coordinates": [SQUARE[:-1]]}, "not a closed ring"),
        ({"type": "Polygon", "coordinates": []}, "not a closed ring"),
        (
            {"type": "Polygon", "coordinates": [[[33, 200], [33, 201], [34, 200], [33, 200]]]},
            "outside",
        ),
        (
            {"type": "Polygon", "coordinates": [[[1], [2], [3], [1]]]},
            "is not a [lon, lat] position",
        ),
        (
            {"type": "Polygon", "coordinates": [[["a", 1], [2, 1], [2, 2], ["a", 1]]]},
            "not a number",
        ),
    ],
)
def test_bad_geometry_is_refused_with_its_path(geometry: object, message: str) -> None:
    one = feature()
    one["geometry"] = geometry
    error = parse_error(encoded(one))
    assert error.startswith("geometry") and message in error


# --- bad documents --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["id", "sender", "sent", "status", "messageType"])
def test_missing_required_property_is_named_with_its_path(name: str) -> None:
    doc = {"type": "FeatureCollection", "features": [feature(), feature(**{name: None})]}
    assert f"features.1.properties.{name}: missing" in parse_error(encoded(doc))


def test_message_type_outside_caps_list_is_refused() -> None:
    message = parse_error(encoded(feature(messageType="Upgrade")))
    assert "properties.messageType: <msgType> is 'Upgrade'; CAP allows" in message


def test_sent_without_offset_is_refused() -> None:
    message = parse_error(encoded(feature(sent="2024-07-18T08:13:00")))
    assert "properties.sent: '2024-07-18T08:13:00' has no UTC offset" in message


def test_reference_without_sent_is_refused_with_its_index() -> None:
    refs = [{"identifier": "x", "sender": NWS}]
    assert "properties.references.0.sent: missing" in parse_error(encoded(feature(references=refs)))


def test_reference_part_with_a_comma_is_refused() -> None:
    refs = [{"identifier": "a,b", "sender": NWS, "sent": "2024-07-18T08:13:00-07:00"}]
    assert "which CAP references forbid" in parse_error(encoded(feature(references=refs)))


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"geocode": ["AZC013"]}, "properties.geocode: a list of 1 is not an object"),
        (
            {"geocode": {"UGC": [13]}},
            "properties.geocode.UGC: a list of 1 is not a list of strings",
        ),
        ({"event": 7}, "properties.event: 7 is not a string"),
        ({"references": "none"}, 'properties.references: "none" is not a list'),
    ],
)
def test_wrongly_typed_property_is_refused(properties: dict[str, Any], message: str) -> None:
    assert message in parse_error(encoded(feature(**properties)))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "GeoJSON is not valid JSON: Expecting value at line 1, column 1"),
        (b"[]", "top level is a list of 0; expected a GeoJSON FeatureCollection or Feature"),
        (b'{"type": "Point"}', "top level is type 'Point'"),
        (b'{"type": "FeatureCollection"}', "features is missing, not a list"),
        (b'{"type": "FeatureCollection", "features": [1]}', "features.0 is 1, not a Feature"),
        (b'{"type": "Feature"}', "properties is missing, not an object"),
        (b'{"type": "Feature", "properties": {"id": NaN}}', "NaN is not a number JSON allows"),
        (b'{"type": "Feature", "properties": {"id": 1e999}}', "out of range"),
        (b'{"a": ' + b"1" * 5000 + b"}", "4300 digits"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ('{"type": "Feature"}'.encode("utf-16"), "not UTF-8"),
    ],
)
def test_bad_json_is_a_parse_error_saying_why(data: bytes, message: str) -> None:
    assert message in parse_error(data)


# --- arbitrary input ------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def parses_or_raises_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        assert all(isinstance(w, Warning) for w in parse(data))


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    parses_or_raises_parse_error(data)


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.sampled_from(["id", "sent", "messageType", "references", "geocode", "parameters", "onset"]),
    JSON_VALUES,
)
def test_arbitrary_property_values_parse_or_raise_parse_error(name: str, value: object) -> None:
    parses_or_raises_parse_error(encoded(feature(**{name: value})))


@settings(max_examples=200, deadline=None, database=None)
@given(JSON_VALUES)
def test_arbitrary_geometry_parses_or_raises_parse_error(geometry: object) -> None:
    one = feature()
    one["geometry"] = geometry
    parses_or_raises_parse_error(encoded(one))
