"""Tests for warnbot.ingest.usgs: NWIS Instantaneous Values JSON → Observations."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warnbot.errors import ParseError
from warnbot.ingest.usgs import parse
from warnbot.model import Observation

GAUGES = Path(__file__).parent / "data" / "samples" / "gauges"
P1D = GAUGES / "usgs_iv_P1D_2sites_discharge.json"
LATEST = GAUGES / "usgs_iv_latest_2sites_flow_stage.json"
POTOMAC = "POTOMAC RIVER NEAR WASH, DC LITTLE FALLS PUMP STA"


def doc(path: Path = LATEST) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_bytes())
    return loaded


def first_series(data: dict[str, Any]) -> dict[str, Any]:
    series: dict[str, Any] = data["value"]["timeSeries"][0]
    return series


def encoded(data: object) -> bytes:
    return json.dumps(data).encode()


def parse_error(data: bytes) -> str:
    with pytest.raises(ParseError) as caught:
        parse(data)
    return str(caught.value)


# --- real samples ---------------------------------------------------------------------------


def test_potomac_latest_discharge_is_9660_cfs_at_1945_utc() -> None:
    potomac = [o for o in parse(P1D.read_bytes()) if o.station == "usgs:01646500"]
    assert potomac[-1] == Observation(
        station="usgs:01646500",
        quantity="discharge",
        value=9660.0,
        unit="ft3/s",
        time=datetime(2020, 8, 18, 19, 45, tzinfo=UTC),  # 15:45 EDT
        station_name=POTOMAC,
    )


def test_one_day_of_two_sites_gives_every_15_minute_reading_in_order() -> None:
    readings = parse(P1D.read_bytes())
    assert len(readings) == 92 + 94
    assert readings[0].time == datetime(2020, 8, 17, 21, 0, tzinfo=UTC)  # 17:00 EDT
    village = [o for o in readings if o.station == "usgs:02458502"]
    assert (village[-1].value, village[-1].time) == (
        35.5,
        datetime(2020, 8, 18, 20, 15, tzinfo=UTC),
    )


def test_latest_values_name_discharge_and_stage_with_their_units() -> None:
    found = {(o.station, o.quantity): (o.value, o.unit) for o in parse(LATEST.read_bytes())}
    assert found == {
        ("usgs:01491000", "discharge"): (439.0, "ft3/s"),
        ("usgs:01491000", "stage"): (4.36, "ft"),
        ("usgs:01645000", "discharge"): (260.0, "ft3/s"),
        ("usgs:01645000", "stage"): (2.68, "ft"),
    }


def test_offsets_of_local_time_become_utc() -> None:
    seneca = [o for o in parse(LATEST.read_bytes()) if o.station == "usgs:01645000"]
    assert {o.time for o in seneca} == {datetime(2020, 2, 13, 21, 50, tzinfo=UTC)}  # 16:50 EST


# --- edge cases on a real response -----------------------------------------------------------


def test_no_data_value_readings_are_skipped_not_read_as_floods() -> None:
    data = doc(P1D)
    first_series(data)["values"][0]["value"][3]["value"] = "-999999"
    readings = parse(encoded(data))
    assert len(readings) == 92 + 94 - 1
    assert all(o.value != -999999 for o in readings)


def test_rainfall_code_maps_to_rainfall_in_inches() -> None:
    data = doc()
    variable = first_series(data)["variable"]
    variable["variableCode"][0]["value"] = "00045"
    variable["unit"]["unitCode"] = "in"
    assert (parse(encoded(data))[0].quantity, parse(encoded(data))[0].unit) == ("rainfall", "in")


def test_unknown_code_keeps_the_variable_name_unescaped_and_the_unit_as_given() -> None:
    data = doc()
    variable = first_series(data)["variable"]
    variable["variableCode"][0]["value"] = "00010"
    variable["variableName"] = "Temperature, water, &#176;C"
    variable["unit"]["unitCode"] = "deg C"
    reading = parse(encoded(data))[0]
    assert (reading.quantity, reading.unit) == ("Temperature, water, °C", "deg C")


def test_response_without_series_is_an_empty_list() -> None:
    assert parse(b'{"value": {"timeSeries": []}}') == []


# --- bad documents --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s["values"][0]["value"][0].update(value="Ice"),
            'value.timeSeries.0.values.0.value.0.value: "Ice" is not a number',
        ),
        (
            lambda s: s["values"][0]["value"][0].update(dateTime="2020-02-13T17:15:00"),
            "value.timeSeries.0.values.0.value.0.dateTime: '2020-02-13T17:15:00' has no UTC offset",
        ),
        (
            lambda s: s["values"][0]["value"][0].pop("dateTime"),
            "value.timeSeries.0.values.0.value.0.dateTime: missing",
        ),
        (
            lambda s: s["sourceInfo"].update(siteCode=[]),
            "value.timeSeries.0.sourceInfo.siteCode.0.value: missing",
        ),
        (
            lambda s: s["variable"].pop("variableCode"),
            "value.timeSeries.0.variable.variableCode.0.value: missing",
        ),
        (lambda s: s.update(values={}), "value.timeSeries.0.values: an object of 0 is not a list"),
        (
            lambda s: s["values"][0].update(value=None),
            "value.timeSeries.0.values.0.value: null is not a list",
        ),
        (
            lambda s: s["variable"].update(noDataValue="none"),
            'value.timeSeries.0.variable.noDataValue: "none" is not a number',
        ),
    ],
)
def test_bad_series_is_refused_naming_its_path(change: Any, message: str) -> None:
    data = doc()
    change(first_series(data))
    assert message in parse_error(encoded(data))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<html>busy</html>", "USGS IV JSON is not valid JSON"),
        (b"{}", "value.timeSeries is missing; expected a USGS IV response"),
        (b'{"value": {"timeSeries": {}}}', "value.timeSeries is an object of 0"),
        (
            b'{"value": {"timeSeries": [7]}}',
            "value.timeSeries.0.sourceInfo.siteCode.0.value: missing",
        ),
        (b"[" * 50_000, "nested too deeply"),
        (b'{"value": Infinity}', "Infinity is not a number JSON allows"),
    ],
)
def test_bad_json_is_a_parse_error_saying_why(data: bytes, message: str) -> None:
    assert message in parse_error(data)


# --- arbitrary input ------------------------------------------------------------------------

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)


def parses_or_raises_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        assert all(isinstance(o, Observation) for o in parse(data))


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    parses_or_raises_parse_error(data)


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from(["value", "dateTime", "qualifiers"]), SCALARS)
def test_arbitrary_reading_fields_parse_or_raise_parse_error(name: str, value: object) -> None:
    data = doc()
    first_series(data)["values"][0]["value"][0][name] = value
    parses_or_raises_parse_error(json.dumps(data).encode())
