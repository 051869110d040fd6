"""Tests for warnbot.ingest.ea: UK Environment Agency flood-monitoring JSON → Observations."""

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
from warnbot.ingest.ea import parse
from warnbot.model import Observation

GAUGES = Path(__file__).parent / "data" / "samples" / "gauges"
E21836 = GAUGES / "ea_station_E21836_measure_latestreading.json"
RLOI = GAUGES / "ea_stations_RLOIid_measures.json"
MEASURES = "http://environment.data.gov.uk/flood-monitoring/id/measures/"
AT_0630 = datetime(2022, 10, 8, 6, 30, tzinfo=UTC)


def station() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(E21836.read_bytes())
    return loaded


def readings(*items: dict[str, Any]) -> bytes:
    """A /data/readings response."""
    return json.dumps({"meta": {}, "items": list(items)}).encode()


def reading(
    notation: str, value: object = 1.25, when: object = "2022-10-08T06:30:00Z"
) -> dict[str, Any]:
    return {"@id": "r", "dateTime": when, "measure": MEASURES + notation, "value": value}


def parse_error(data: bytes) -> str:
    with pytest.raises(ParseError) as caught:
        parse(data)
    return str(caught.value)


# --- real samples ---------------------------------------------------------------------------


def test_corpusty_station_gives_its_latest_stage_of_0_081_m_at_0630_utc() -> None:
    assert parse(E21836.read_bytes()) == [
        Observation(
            station="ea:E21836",
            quantity="stage",
            value=0.081,
            unit="m",  # mASD: metres above the station datum
            time=AT_0630,
            station_name="Corpusty",
        )
    ]


def test_station_list_without_readings_is_an_empty_list_not_an_error() -> None:
    assert parse(RLOI.read_bytes()) == []


# --- the other shapes -----------------------------------------------------------------------


def test_station_with_a_measures_list_reads_each_latest_reading() -> None:
    data = station()
    measure = data["items"]["measures"]
    downstream = copy.deepcopy(measure) | {"qualifier": "Downstream Stage"}
    downstream["latestReading"] = downstream["latestReading"] | {"value": 0.5}
    data["items"]["measures"] = [measure, downstream, MEASURES + "E21836-flow--i-15_min-m3_s"]
    found = parse(json.dumps(data).encode())
    assert [(o.quantity, o.value) for o in found] == [("stage", 0.081), ("downstream_stage", 0.5)]


def test_latest_reading_given_only_as_a_link_gives_no_reading() -> None:
    data = station()
    data["items"]["measures"]["latestReading"] = MEASURES + "E21836-level-stage-i-15_min-mASD"
    assert parse(json.dumps(data).encode()) == []


def test_measures_response_reads_tidal_level_in_maod_as_metres() -> None:
    measure = {
        "@id": MEASURES + "E70039-level-tidal_level-i-15_min-mAOD",
        "latestReading": {"dateTime": "2022-10-08T06:30:00Z", "value": 3.2},
        "parameter": "level",
        "qualifier": "Tidal Level",
        "stationReference": "E70039",
        "unitName": "mAOD",
    }
    (found,) = parse(json.dumps({"meta": {}, "items": [measure]}).encode())
    assert (found.station, found.quantity, found.value, found.unit) == (
        "ea:E70039",
        "tidal_level",
        3.2,
        "m",
    )


@pytest.mark.parametrize(
    ("notation", "station", "quantity", "unit"),
    [
        ("E21836-level-stage-i-15_min-mASD", "ea:E21836", "stage", "m"),
        ("3400TH-flow--i-15_min-m3_s", "ea:3400TH", "discharge", "m3/s"),
        ("E72639-rainfall-tipping_bucket_raingauge-t-15_min-mm", "ea:E72639", "rainfall", "mm"),
        ("1491TH-level-groundwater-i-1_h-mAOD", "ea:1491TH", "groundwater", "m"),
        ("E1-wind-speed-i-15_min-m_s", "ea:E1", "wind", "m/s"),
    ],
)
def test_reading_takes_station_quantity_and_unit_from_the_measure_notation(
    notation: str, station: str, quantity: str, unit: str
) -> None:
    (found,) = parse(readings(reading(notation)))
    assert (found.station, found.quantity, found.unit, found.value) == (
        station,
        quantity,
        unit,
        1.25,
    )
    assert found.time == AT_0630


def test_station_label_given_as_a_list_takes_the_first() -> None:
    data = station()
    data["items"]["label"] = ["Corpusty", "Corpusty Mill"]
    assert parse(json.dumps(data).encode())[0].station_name == "Corpusty"


# --- bad documents --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "EA JSON is not valid JSON"),
        (b'{"meta": {}}', "items is missing; expected an EA flood-monitoring response"),
        (b'{"items": 3}', "items is 3"),
        (b'{"items": [null]}', "items.0: null is not an object"),
        (
            b'{"items": [{"severity": "Flood warning"}]}',
            "items.0: neither a station, a measure nor a reading",
        ),
        (b'{"items": {"measures": "x"}}', 'items.0.measures: "x" is not an object or list'),
        (b'{"items": {"a": -Infinity}}', "-Infinity is not a number JSON allows"),
    ],
)
def test_bad_document_is_a_parse_error_saying_why(data: bytes, message: str) -> None:
    assert message in parse_error(data)


def test_reading_value_given_as_a_list_is_refused() -> None:
    data = readings(reading("E21836-level-stage-i-15_min-mASD", value=[0.08, 0.09]))
    assert "items.0.value: a list of 2 is not a number" in parse_error(data)


def test_reading_time_without_offset_is_refused() -> None:
    data = readings(reading("E21836-level-stage-i-15_min-mASD", when="2022-10-08T06:30:00"))
    assert "items.0.dateTime: '2022-10-08T06:30:00' has no UTC offset" in parse_error(data)


def test_reading_whose_measure_has_no_notation_is_refused() -> None:
    data = readings(reading("not-a-notation"))
    assert (
        "items.0.measure: no field and no measure notation to read a station from"
        in parse_error(data)
    )


def test_measure_without_unit_is_refused() -> None:
    data = station()
    measure = data["items"]["measures"]
    del measure["unitName"]
    measure["@id"] = measure["notation"] = "E21836"
    assert "to read a unit from" in parse_error(json.dumps(data).encode())


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
@given(
    st.sampled_from(["stationReference", "unitName", "parameter", "qualifier", "latestReading"]),
    SCALARS | st.lists(SCALARS, max_size=3) | st.dictionaries(st.text(max_size=8), SCALARS),
)
def test_arbitrary_measure_fields_parse_or_raise_parse_error(name: str, value: object) -> None:
    data = station()
    data["items"]["measures"][name] = value
    parses_or_raises_parse_error(json.dumps(data).encode())
