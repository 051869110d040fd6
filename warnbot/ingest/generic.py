"""A configurable JSON mapping for local hydrology and sensor systems → Observations.

Provincial 水文 platforms, reservoir SCADA exports and village sensors each send their own
JSON; rather than one parser per vendor, a :class:`JsonMapping` in the feed config names where
each field lives. The same mapping serves the HTTP poller, the MQTT subscriber and the push
endpoint, so one vendor is configured once.

Also home of the JSON helpers the other JSON parsers share (:func:`load_json`, :func:`lookup`,
:func:`number`, :func:`json_time`): every failure is a ParseError naming the dotted path.
Pure, no I/O; ``now`` is only read to refuse readings from the future.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator

from warnbot.errors import ParseError
from warnbot.model import Observation

UNITS = ("m", "cm", "mm", "m3/s", "ft", "ft3/s", "in", "mm/h", "%", "deg", "kPa")
_UNIT_ALIASES = {
    **{unit.casefold(): unit for unit in UNITS},
    "米": "m", "meter": "m", "meters": "m", "metre": "m", "metres": "m",
    "厘米": "cm", "centimeter": "cm", "centimeters": "cm", "centimetre": "cm",
    "毫米": "mm", "millimeter": "mm", "millimeters": "mm", "millimetre": "mm",
    "m³/s": "m3/s", "m^3/s": "m3/s", "立方米每秒": "m3/s", "立方米/秒": "m3/s",
    "ft³/s": "ft3/s", "cfs": "ft3/s", "feet": "ft", "foot": "ft", "inch": "in", "inches": "in",
    "mm/hr": "mm/h", "毫米/小时": "mm/h", "毫米每小时": "mm/h", "percent": "%",
    "°": "deg", "degree": "deg", "degrees": "deg", "度": "deg", "千帕": "kPa",
}  # fmt: skip
_REGION_CODE = re.compile(r"\d{6}(?:\d{3}){0,2}", re.ASCII)  # GB/T 2260: county, township, village
_PATH = re.compile(r"[^.\s]+(?:\.[^.\s]+)*")
MISSING = object()  # what lookup() returns for a path that is not there


def normalize_unit(text: str) -> str | None:
    """The allow-listed symbol for ``text`` ("米" → "m", "M3/S" → "m3/s"), or None."""
    return _UNIT_ALIASES.get("".join(text.split()).casefold())


def _path(text: str) -> str:
    if not _PATH.fullmatch(text):
        raise ValueError(f"{text!r} is not a dotted path such as 'data.readings.0.value'")
    return text


def _items_path(text: str) -> str:
    return _path(text) if text else text


def _unit(text: str) -> str:
    unit = normalize_unit(text)
    if unit is None:
        raise ValueError(f"unit {text!r} is not one of {', '.join(UNITS)}")
    return unit


DottedPath = Annotated[str, AfterValidator(_path)]


class Const(BaseModel):
    """A constant in place of a path, e.g. ``quantity = {const = "rainfall"}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    const: str


class UnitConst(BaseModel):
    """A constant unit, checked against the allow-list when the config loads."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    const: Annotated[str, AfterValidator(_unit)]


class JsonMapping(BaseModel):
    """Where each Observation field lives in one vendor's JSON; paths are dotted ("a.b.0.c").

    ``items`` leads to the list of readings (or a single reading object); "" is the top level.
    ``time_format`` is ISO 8601, or epoch seconds/milliseconds; naive ISO times are read in
    ``timezone``. ``station_prefix`` namespaces the vendor's ids ("sw:" + "60102300").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: Annotated[str, AfterValidator(_items_path)] = ""
    station: DottedPath
    quantity: DottedPath | Const
    value: DottedPath
    unit: DottedPath | UnitConst
    time: DottedPath
    station_name: DottedPath | None = None
    region_code: DottedPath | None = None
    time_format: Literal["iso8601", "epoch_s", "epoch_ms"] = "iso8601"
    timezone: str = "Asia/Shanghai"
    station_prefix: str = ""
    max_future_s: float = 600.0  # clocks drift; a reading further ahead is a broken clock

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ValueError, LookupError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {name!r}") from exc
        return name


def parse(data: bytes, mapping: JsonMapping, *, now: datetime | None = None) -> list[Observation]:
    """Every reading under ``mapping.items``, in order; ``now`` defaults to the wall clock.

    Raises ParseError naming the item index and field for a missing field, a non-numeric or
    non-finite value, a unit outside :data:`UNITS`, a bad time or one more than
    ``max_future_s`` ahead of ``now``. An empty list of readings is an empty result.
    """
    items = _items(load_json(data), mapping.items)
    reader = _Reader(mapping, now or datetime.now(UTC))
    return [reader.observation(index, item) for index, item in enumerate(items)]


def load_json(data: bytes, what: str = "document") -> object:
    """Strict JSON: UTF-8, no NaN/Infinity, finite numbers, bounded depth and digits."""
    try:
        return json.loads(data.decode("utf-8-sig"), parse_constant=_refuse, parse_float=_finite)
    except UnicodeDecodeError as exc:
        raise ParseError(f"{what} is not UTF-8 JSON: byte {exc.start} is not UTF-8") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ParseError(f"{what} is not valid JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise ParseError(f"{what} is nested too deeply to be read") from None
    except ValueError as exc:  # a constant, a float out of range, an int of > 4300 digits
        raise ParseError(f"{what} is not usable JSON: {exc}") from None


def lookup(node: object, path: str) -> object:
    """The value at a dotted path ("" is ``node`` itself), or :data:`MISSING`."""
    for part in path.split(".") if path else ():
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isascii() and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def number(where: str, raw: object) -> float:
    """A finite number from a JSON number or numeric string (gauges send both)."""
    _present(where, raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ParseError(f"{where}: {shown(raw)} is not a number")
    try:
        value = float(raw)
    except (ValueError, OverflowError):
        raise ParseError(f"{where}: {shown(raw)} is not a number") from None
    if not math.isfinite(value):
        raise ParseError(f"{where}: {shown(raw)} is not a finite number")
    return value


def text(where: str, raw: object) -> str:
    """A non-empty string; integers count, since ids are often sent as numbers."""
    _present(where, raw)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise ParseError(f"{where}: {shown(raw)} is not a non-empty string")
    return raw.strip()


def json_time(where: str, raw: object, default_zone: ZoneInfo | None = None) -> datetime:
    """An ISO 8601 time as aware UTC; naive ones need ``default_zone`` or are refused."""
    _present(where, raw)
    if not isinstance(raw, str):
        raise ParseError(f"{where}: {shown(raw)} is not a date-time string")
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ParseError(f"{where}: {raw!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None and default_zone is None:
        raise ParseError(f"{where}: {raw!r} has no UTC offset")
    return _utc(where, raw, moment.replace(tzinfo=moment.tzinfo or default_zone))


class _Reader:
    """One mapping applied to one document's items, with the clock fixed for all of them."""

    def __init__(self, mapping: JsonMapping, now: datetime) -> None:
        self.m, self.now, self.zone = mapping, now, ZoneInfo(mapping.timezone)

    def observation(self, index: int, item: object) -> Observation:
        field, m = _Field(index, item), self.m
        return Observation(
            station=m.station_prefix + field.text(m.station, "station"),
            quantity=field.quantity(m.quantity),
            value=number(field.where("value", m.value), field.get(m.value, "value")),
            unit=field.unit(m.unit),
            time=self.time(field),
            station_name=field.optional(m.station_name, "station_name"),
            region_code=field.region_code(m.region_code),
        )

    def time(self, field: _Field) -> datetime:
        raw, where = field.get(self.m.time, "time"), field.where("time", self.m.time)
        if self.m.time_format == "iso8601":
            moment = json_time(where, raw, self.zone)
        else:
            moment = _epoch(where, raw, 1000.0 if self.m.time_format == "epoch_ms" else 1.0)
        if moment - self.now > timedelta(seconds=self.m.max_future_s):
            raise ParseError(f"{where}: {moment.isoformat()} is in the future (now {self.now})")
        return moment


class _Field:
    """Field access on one item, every error naming the item index, field and path."""

    def __init__(self, index: int, item: object) -> None:
        self.index, self.item = index, item

    def where(self, name: str, path: str) -> str:
        return f"item {self.index}: {name} ({path})"

    def get(self, path: str, name: str) -> object:
        raw = lookup(self.item, path)
        if raw is MISSING or raw is None:
            raise ParseError(f"{self.where(name, path)}: missing")
        return raw

    def text(self, path: str, name: str) -> str:
        return text(self.where(name, path), self.get(path, name))

    def quantity(self, spec: str | Const) -> str:
        return spec.const if isinstance(spec, Const) else self.text(spec, "quantity")

    def unit(self, spec: str | UnitConst) -> str:
        if isinstance(spec, UnitConst):
            return spec.const
        try:
            return _unit(self.text(spec, "unit"))
        except ValueError as exc:
            raise ParseError(f"{self.where('unit', spec)}: {exc}") from None

    def optional(self, path: str | None, name: str) -> str:
        """An optional field: unmapped, absent, null and "" all read as ""."""
        if path is None or lookup(self.item, path) in (MISSING, None, ""):
            return ""
        return self.text(path, name)

    def region_code(self, path: str | None) -> str:
        code = self.optional(path, "region_code")
        if code and not _REGION_CODE.fullmatch(code):
            raise ParseError(f"{self.where('region_code', str(path))}: {code!r} is not GB/T 2260")
        return code


def _present(where: str, raw: object) -> None:
    if raw is MISSING or raw is None:
        raise ParseError(f"{where}: missing")


def _items(doc: object, path: str) -> list[object]:
    found = lookup(doc, path)
    if isinstance(found, list):
        return found
    if isinstance(found, dict):
        return [found]
    if found is MISSING:
        raise ParseError(f"items path {path!r} is not in the document")
    where = f"items path {path!r}" if path else "the top level"
    raise ParseError(f"{where} holds {shown(found)}, not a list or object of readings")


def _epoch(where: str, raw: object, per_second: float) -> datetime:
    seconds = number(where, raw) / per_second
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ParseError(f"{where}: {shown(raw)} is out of range for an epoch time") from None


def _utc(where: str, raw: str, moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ParseError(f"{where}: {raw!r} is out of range in UTC") from None


def shown(raw: object) -> str:
    """A short rendering of an offending value for an error message."""
    if raw is MISSING:
        return "missing"
    if isinstance(raw, dict | list):  # never re-encode a (possibly deep) container
        return f"{'an object' if isinstance(raw, dict) else 'a list'} of {len(raw)}"
    rendered = json.dumps(raw, ensure_ascii=False, default=str)
    return rendered if len(rendered) <= 60 else rendered[:57] + "..."


def _refuse(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"number {literal[:40]} is out of range")
    return value
