"""Parse UK Environment Agency flood-monitoring JSON into Observations.

Pure, no I/O. Three response shapes carry readings, told apart per item:

* stations (``/id/stations/E21836``, ``/id/stations?…``): ``measures`` as one object or a
  list, each with an optional ``latestReading``;
* measures (``/id/measures?…``): each with its own ``latestReading``;
* readings (``/data/readings?…``, ``/id/stations/E21836/readings``): ``value`` + ``dateTime``,
  the measure named only by its URL, whose last segment is the notation
  ``{station}-{parameter}-{qualifier}-{type}-{period}-{unit}``.

A station or measure without a reading (the default station list) gives none: an empty
result, not an error. Levels are metres whatever the datum (``mASD`` above the station datum,
``mAOD`` above Ordnance Datum): the quantity says which kind of level it is ("stage",
"downstream_stage", "tidal_level", "groundwater").
"""

from __future__ import annotations

from warnbot.errors import ParseError
from warnbot.ingest.generic import json_time, load_json, lookup, number, shown, text
from warnbot.model import Observation

_LEVEL_KINDS = frozenset({"stage", "downstream_stage", "tidal_level", "groundwater"})
_QUANTITIES = {"flow": "discharge", "rainfall": "rainfall"}
Json = dict[str, object]
_UNITS = {"masd": "m", "maod": "m", "mbdat": "m", "m": "m", "mm": "mm", "m3/s": "m3/s"}


def parse(data: bytes) -> list[Observation]:
    """Every reading in the response, in order; see the module docstring for the shapes."""
    items = lookup(load_json(data, "EA JSON"), "items")
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise ParseError(f"items is {shown(items)}; expected an EA flood-monitoring response")
    return [found for index, item in enumerate(items) for found in _item(f"items.{index}", item)]


def _item(where: str, item: object) -> list[Observation]:
    if not isinstance(item, dict):
        raise ParseError(f"{where}: {shown(item)} is not an object")
    if "measures" in item:
        return _station(where, item)
    if "latestReading" in item or "parameter" in item:
        return _latest(where, item, {})
    if "value" in item and "measure" in item:
        return [_reading(where, item)]
    raise ParseError(f"{where}: neither a station, a measure nor a reading")


def _station(where: str, station: Json) -> list[Observation]:
    measures = station["measures"]
    listed = [measures] if isinstance(measures, dict) else measures
    if not isinstance(listed, list):
        raise ParseError(f"{where}.measures: {shown(measures)} is not an object or list")
    return [
        reading
        for index, measure in enumerate(listed)
        if isinstance(measure, dict)  # a bare measure URL carries no reading
        for reading in _latest(f"{where}.measures.{index}", measure, station)
    ]


def _latest(where: str, measure: Json, station: Json) -> list[Observation]:
    """The measure's latest reading, or none (absent, or only a link to it)."""
    latest = measure.get("latestReading")
    if not isinstance(latest, dict):
        return []
    where += ".latestReading"
    return [_observation(where, latest, _Measure(where, measure, station))]


def _reading(where: str, reading: Json) -> Observation:
    measure = reading["measure"]
    described = measure if isinstance(measure, dict) else {"@id": measure}
    return _observation(where, reading, _Measure(f"{where}.measure", described, {}))


def _observation(where: str, reading: Json, measure: _Measure) -> Observation:
    return Observation(
        station=f"ea:{measure.station}",
        quantity=measure.quantity,
        value=number(f"{where}.value", reading.get("value")),
        unit=measure.unit,
        time=json_time(f"{where}.dateTime", reading.get("dateTime")),
        station_name=measure.station_name,
    )


class _Measure:
    """What a measure measures: from its own fields, else its station's, else its notation."""

    def __init__(self, where: str, measure: Json, station: Json) -> None:
        notation = _notation(measure)
        reference = measure.get("stationReference") or station.get("stationReference")
        self.station = text(f"{where}.stationReference", reference or _need(where, notation[0]))
        parameter = _field(measure, "parameter") or _need(where, notation[1], "a parameter")
        self.quantity = _quantity(parameter, _field(measure, "qualifier") or notation[2])
        unit = _field(measure, "unitName") or _need(where, notation[5], "a unit")
        self.unit = _UNITS.get(unit.casefold(), unit)
        self.station_name = _label(station.get("label"))


def _need(where: str, part: str, what: str = "a station") -> str:
    """A notation part standing in for a missing field; ParseError when it is not there."""
    if not part:
        raise ParseError(f"{where}: no field and no measure notation to read {what} from")
    return part.replace("_", "/") if what == "a unit" else part


def _notation(measure: Json) -> list[str]:
    """The six notation parts, or six empty strings when the measure names none."""
    raw = measure.get("notation") or measure.get("@id")
    parts = raw.rstrip("/").rpartition("/")[2].split("-") if isinstance(raw, str) else []
    return parts if len(parts) == 6 else [""] * 6


def _quantity(parameter: str, qualifier: str) -> str:
    """EA parameter + qualifier → warnbot's quantity ("level"/"Stage" → "stage")."""
    parameter, qualifier = _snake(parameter), _snake(qualifier)
    if parameter == "level":
        return qualifier if qualifier in _LEVEL_KINDS else "level"
    return _QUANTITIES.get(parameter, parameter)


def _field(measure: Json, name: str) -> str:
    raw = measure.get(name)
    return raw.strip() if isinstance(raw, str) else ""


def _label(raw: object) -> str:
    """A station label; the API sometimes gives a list of alternatives: take the first."""
    if isinstance(raw, list) and raw:
        raw = raw[0]
    return raw.strip() if isinstance(raw, str) else ""


def _snake(name: str) -> str:
    return "_".join(name.lower().split())
