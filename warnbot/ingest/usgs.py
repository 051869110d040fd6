"""Parse USGS NWIS Instantaneous Values JSON (``/nwis/iv/?format=json``) into Observations.

Pure, no I/O. The service is WaterML turned into JSON: ``value.timeSeries`` holds one series
per site and parameter, each with its readings as strings and local times with offsets.
Readings equal to the series' ``noDataValue`` (-999999: ice, equipment fault) are gaps, not
floods, and are skipped. Every failure is a ParseError naming the dotted path.
"""

from __future__ import annotations

import html

from warnbot.errors import ParseError
from warnbot.ingest.generic import MISSING, json_time, load_json, lookup, number, shown, text
from warnbot.model import Observation

# NWIS parameter codes the rules speak of; any other keeps the series' own variable name.
QUANTITIES = {"00060": "discharge", "00065": "stage", "00045": "rainfall"}
UNITS = {"00060": "ft3/s", "00065": "ft", "00045": "in"}
_NAME = "variable.variableName"


def parse(data: bytes) -> list[Observation]:
    """Every reading of every series, in order; a response without readings is an empty list."""
    series = lookup(load_json(data, "USGS IV JSON"), "value.timeSeries")
    if not isinstance(series, list):
        raise ParseError(f"value.timeSeries is {shown(series)}; expected a USGS IV response")
    return [
        reading
        for index, one in enumerate(series)
        for reading in _Series(f"value.timeSeries.{index}", one).observations()
    ]


class _Series:
    """One site × parameter series: what is measured where, then its readings."""

    def __init__(self, where: str, series: object) -> None:
        self.where, self.series = where, series
        site = self.required("sourceInfo.siteCode.0.value")
        code = self.required("variable.variableCode.0.value")
        self.station, self.code = f"usgs:{site}", code
        # "Temperature, water, &#176;C": the service HTML-escapes its own names
        self.quantity = QUANTITIES.get(code) or html.unescape(self.required(_NAME))
        self.unit = UNITS.get(code) or self.required("variable.unit.unitCode")
        self.station_name = self.optional("sourceInfo.siteName")
        self.no_data = self.no_data_value()

    def required(self, path: str) -> str:
        return text(f"{self.where}.{path}", self.get(path))

    def get(self, path: str) -> object:
        raw = lookup(self.series, path)
        if raw is MISSING or raw is None:
            raise ParseError(f"{self.where}.{path}: missing")
        return raw

    def optional(self, path: str) -> str:
        raw = lookup(self.series, path)
        return raw.strip() if isinstance(raw, str) else ""

    def no_data_value(self) -> float | None:
        raw = lookup(self.series, "variable.noDataValue")
        if raw is MISSING or raw is None:
            return None
        return number(f"{self.where}.variable.noDataValue", raw)

    def observations(self) -> list[Observation]:
        blocks = self.get("values")
        if not isinstance(blocks, list):
            raise ParseError(f"{self.where}.values: {shown(blocks)} is not a list")
        found: list[Observation] = []
        for b, block in enumerate(blocks):
            readings = lookup(block, "value")
            if not isinstance(readings, list):
                raise ParseError(f"{self.where}.values.{b}.value: {shown(readings)} is not a list")
            for r, reading in enumerate(readings):
                found += self.reading(f"{self.where}.values.{b}.value.{r}", reading)
        return found

    def reading(self, where: str, reading: object) -> list[Observation]:
        """One reading, or none when it is the series' no-data marker."""
        value = number(f"{where}.value", lookup(reading, "value"))
        if value == self.no_data:
            return []
        time = json_time(f"{where}.dateTime", lookup(reading, "dateTime"))
        return [Observation(self.station, self.quantity, value, self.unit, time, self.station_name)]
