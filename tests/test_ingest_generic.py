"""Tests for warnbot.ingest.generic: the configurable JSON mapping for local sensor systems."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from warnbot.errors import ParseError
from warnbot.ingest.generic import MISSING, JsonMapping, lookup, normalize_unit, parse
from warnbot.model import Observation

NOW = datetime(2026, 8, 15, 0, 0, tzinfo=UTC)
# A provincial hydrology platform's shape: codes as strings, naive Beijing times.
HYDRO = {
    "items": "data.readings",
    "station": "stcd",
    "station_name": "stnm",
    "quantity": {"const": "water_level"},
    "value": "z",
    "unit": "unit",
    "time": "tm",
    "region_code": "adcd",
    "station_prefix": "sw:",
}


def hydro_reading(**fields: Any) -> dict[str, Any]:
    reading = {
        "stcd": "60102300",
        "stnm": "示例水文站",
        "z": "12.34",
        "unit": "米",
        "tm": "2026-08-15 06:00:00",
        "adcd": "449901",
    }
    return {k: v for k, v in (reading | fields).items() if v is not None}


def hydro(*readings: dict[str, Any]) -> bytes:
    return json.dumps(
        {"code": 0, "data": {"readings": list(readings)}}, ensure_ascii=False
    ).encode()


def mapping(**changes: Any) -> JsonMapping:
    return JsonMapping(**(HYDRO | changes))


def parse_error(data: bytes, m: JsonMapping | None = None) -> str:
    with pytest.raises(ParseError) as caught:
        parse(data, m or mapping(), now=NOW)
    return str(caught.value)


# --- readings that map --------------------------------------------------------------------------


def test_hydrology_reading_maps_to_an_observation_in_utc() -> None:
    (found,) = parse(hydro(hydro_reading()), mapping(), now=NOW)
    assert found == Observation(
        station="sw:60102300",
        quantity="water_level",
        value=12.34,
        unit="m",
        time=datetime(2026, 8, 14, 22, 0, tzinfo=UTC),  # 06:00 Beijing
        station_name="示例水文站",
        region_code="449901",
    )


def test_an_explicit_offset_wins_over_the_default_time_zone() -> None:
    data = hydro(hydro_reading(tm="2026-08-14T23:00:00+00:00"))
    assert parse(data, mapping(), now=NOW)[0].time == datetime(2026, 8, 14, 23, tzinfo=UTC)


def test_default_time_zone_is_configurable() -> None:
    data = hydro(hydro_reading(tm="2026-08-14T12:00:00"))
    assert parse(data, mapping(timezone="UTC"), now=NOW)[0].time == datetime(
        2026, 8, 14, 12, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("time_format", "raw"), [("epoch_s", 1786744800), ("epoch_ms", "1786744800000")]
)
def test_epoch_seconds_and_milliseconds_are_read_as_utc(time_format: str, raw: object) -> None:
    data = hydro(hydro_reading(tm=raw))
    found = parse(data, mapping(time_format=time_format), now=NOW)[0]
    assert found.time == datetime(2026, 8, 14, 22, 0, tzinfo=UTC)


def test_top_level_list_and_top_level_object_both_read_with_an_empty_items_path() -> None:
    reading = hydro_reading()
    as_list = json.dumps([reading, reading]).encode()
    as_object = json.dumps(reading).encode()
    assert len(parse(as_list, mapping(items=""), now=NOW)) == 2
    assert len(parse(as_object, mapping(items=""), now=NOW)) == 1


def test_paths_with_list_indexes_reach_into_nested_arrays() -> None:
    sensor = {"id": 7, "kind": "tilt", "vals": [{"v": 0.5, "u": "deg", "t": 1786744800}]}
    m = JsonMapping(
        items="",
        station="id",
        quantity="kind",
        value="vals.0.v",
        unit="vals.0.u",
        time="vals.0.t",
        time_format="epoch_s",
    )
    (found,) = parse(json.dumps(sensor).encode(), m, now=NOW)
    assert (found.station, found.quantity, found.value, found.unit) == ("7", "tilt", 0.5, "deg")


def test_a_constant_unit_needs_no_field_in_the_reading() -> None:
    data = hydro(hydro_reading(unit=None))
    assert parse(data, mapping(unit={"const": "毫米"}), now=NOW)[0].unit == "mm"


def test_empty_reading_list_is_an_empty_result() -> None:
    assert parse(hydro(), mapping(), now=NOW) == []


def test_a_reading_up_to_ten_minutes_ahead_is_accepted_for_clock_drift() -> None:
    ahead = (NOW + timedelta(minutes=9)).isoformat()
    assert parse(hydro(hydro_reading(tm=ahead)), mapping(), now=NOW)[0].time > NOW


@pytest.mark.parametrize(
    ("written", "unit"),
    [
        ("米", "m"), ("M", "m"), ("metres", "m"), ("厘米", "cm"), ("毫米", "mm"), ("MM", "mm"),
        ("立方米每秒", "m3/s"), ("m³/s", "m3/s"), ("M3/S", "m3/s"), ("cfs", "ft3/s"),
        ("feet", "ft"), ("inches", "in"), ("mm/hr", "mm/h"), ("毫米/小时", "mm/h"),
        ("%", "%"), ("°", "deg"), ("度", "deg"), ("KPA", "kPa"), ("千帕", "kPa"), (" m ", "m"),
    ],
)  # fmt: skip
def test_unit_aliases_normalize_to_the_allow_list(written: str, unit: str) -> None:
    assert normalize_unit(written) == unit


def test_lookup_walks_keys_and_indexes_and_says_missing() -> None:
    doc = {"a": {"b": [{"c": 1}]}}
    assert lookup(doc, "a.b.0.c") == 1
    assert lookup(doc, "") is doc
    assert all(lookup(doc, path) is MISSING for path in ("a.b.1.c", "a.x", "a.b.c", "a.b.-1"))


# --- readings that do not ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("z", "abc", 'item 1: value (z): "abc" is not a number'),
        ("z", "nan", 'item 1: value (z): "nan" is not a finite number'),
        ("z", True, "item 1: value (z): true is not a number"),
        ("z", None, "item 1: value (z): missing"),
        ("stcd", None, "item 1: station (stcd): missing"),
        ("stcd", "  ", 'item 1: station (stcd): "  " is not a non-empty string'),
        ("unit", "英尺", "item 1: unit (unit): unit '英尺' is not one of m, cm, mm, m3/s"),
        ("unit", None, "item 1: unit (unit): missing"),
        ("tm", "yesterday", "item 1: time (tm): 'yesterday' is not an ISO 8601 date-time"),
        ("tm", 1786744800, "item 1: time (tm): 1786744800 is not a date-time string"),
        (
            "tm",
            "2026-08-15T00:10:01+00:00",
            "item 1: time (tm): 2026-08-15T00:10:01+00:00 is in the future",
        ),
        ("adcd", "44-99", "item 1: region_code (adcd): '44-99' is not GB/T 2260"),
    ],
)
def test_bad_field_names_the_item_index_and_field(field: str, value: object, message: str) -> None:
    data = hydro(hydro_reading(), hydro_reading(**{field: value}))
    assert message in parse_error(data)


def test_epoch_time_out_of_range_is_refused() -> None:
    data = hydro(hydro_reading(tm=1e300))
    assert "item 0: time (tm): 1e+300 is out of range" in parse_error(
        data, mapping(time_format="epoch_s")
    )


def test_optional_fields_may_be_absent_from_a_reading() -> None:
    (found,) = parse(hydro(hydro_reading(stnm=None, adcd=None)), mapping(), now=NOW)
    assert (found.station_name, found.region_code) == ("", "")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe{}", "document is not UTF-8 JSON: byte 0 is not UTF-8"),
        (b'{"data": {"readings": [}}', "document is not valid JSON: Expecting value at line 1"),
        (b'{"data": {}}', "items path 'data.readings' is not in the document"),
        (
            b'{"data": {"readings": "none"}}',
            "items path 'data.readings' holds \"none\", not a list",
        ),
        (b'{"data": {"readings": [NaN]}}', "NaN is not a number JSON allows"),
        (b'{"data": ' * 20_000 + b"1" + b"}" * 20_000, "nested too deeply"),
        (b'{"data": {"readings": [' + b"9" * 5000 + b"]}}", "4300 digits"),
        (b'{"data": {"readings": [1e400]}}', "number 1e400 is out of range"),
        (b'{"data": {"readings": [3]}}', "item 0: station (stcd): missing"),
    ],
)
def test_bad_document_is_a_parse_error_saying_why(data: bytes, message: str) -> None:
    assert message in parse_error(data)


# --- the mapping itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"value": "a..b"}, "is not a dotted path"),
        ({"items": "data. readings"}, "is not a dotted path"),
        ({"unit": {"const": "furlong"}}, "unit 'furlong' is not one of"),
        ({"time_format": "excel"}, "time_format"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_mapping_is_refused_when_the_config_loads(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        mapping(**changes)


def test_mapping_requires_station_value_time_quantity_and_unit() -> None:
    with pytest.raises(ValidationError) as caught:
        JsonMapping()  # type: ignore[call-arg]
    missing = {error["loc"][0] for error in caught.value.errors()}
    assert missing == {"station", "quantity", "value", "unit", "time"}


def test_now_defaults_to_the_wall_clock() -> None:
    assert len(parse(hydro(hydro_reading()), mapping())) == 1


# --- arbitrary input ------------------------------------------------------------------------

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)


def parses_or_raises_parse_error(data: bytes, m: JsonMapping) -> None:
    with contextlib.suppress(ParseError):
        assert all(isinstance(o, Observation) for o in parse(data, m, now=NOW))


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    parses_or_raises_parse_error(data, mapping())


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.sampled_from(["stcd", "z", "unit", "tm", "adcd", "stnm"]),
    SCALARS | st.lists(SCALARS, max_size=3),
    st.sampled_from(["iso8601", "epoch_s", "epoch_ms"]),
)
def test_arbitrary_field_values_parse_or_raise_parse_error(
    field: str, value: object, fmt: str
) -> None:
    data = json.dumps({"data": {"readings": [hydro_reading(**{field: value})]}}).encode()
    parses_or_raises_parse_error(data, mapping(time_format=fmt))
