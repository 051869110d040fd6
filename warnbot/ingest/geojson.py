"""Parse NWS api.weather.gov alert GeoJSON (a FeatureCollection or one Feature) into Warnings.

Pure, no I/O. The API's ``properties`` are CAP under other names (``messageType``, references
as objects, geocodes as lists), so each feature becomes the same :class:`Warning` a CAP
document would, and rules need not know which route it came by. Geometry is GeoJSON
``[lon, lat]``; CAP polygons are ``"lat,lon lat,lon …"``, so every position is swapped.
Every failure is a ParseError naming the dotted path ("features.0.properties.sent").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from warnbot.errors import ParseError
from warnbot.ingest.cap import _closed, signal_colour
from warnbot.ingest.gbt35965 import with_national_codes
from warnbot.ingest.generic import MISSING, json_time, load_json, number, shown
from warnbot.model import Area, Warning

Pairs = tuple[tuple[str, str], ...]
# The API serves public alerts and states no scope.
_DEFAULT_SCOPE = "Public"


def parse(data: bytes) -> list[Warning]:
    """Every feature's warning, in order; an empty collection is an empty list.

    Polygons keep only each polygon's outer ring (CAP cannot express holes); a null geometry
    (zone-based alerts) gives no polygon. Raises ParseError for anything else unusable.
    """
    doc = load_json(data, "GeoJSON")
    return [_warning(where, feature) for where, feature in _features(doc)]


def _features(doc: object) -> list[tuple[str, object]]:
    """``(path prefix, feature)`` pairs of a FeatureCollection, or of a lone Feature."""
    kind = doc.get("type") if isinstance(doc, dict) else None
    if isinstance(doc, dict) and kind == "FeatureCollection":
        features = doc.get("features", MISSING)
        if not isinstance(features, list):
            raise ParseError(f"features is {shown(features)}, not a list")
        return [(f"features.{index}.", feature) for index, feature in enumerate(features)]
    if isinstance(doc, dict) and kind == "Feature":
        return [("", doc)]
    found = f"type {kind!r}" if isinstance(doc, dict) else shown(doc)
    raise ParseError(f"top level is {found}; expected a GeoJSON FeatureCollection or Feature")


def _warning(where: str, feature: object) -> Warning:
    if not isinstance(feature, dict):
        raise ParseError(f"{where.rstrip('.') or 'document'} is {shown(feature)}, not a Feature")
    p = _Properties(where + "properties", feature.get("properties", MISSING))
    event, headline, parameters = p.text("event"), p.text("headline"), p.pairs("parameters")
    return with_national_codes(
        Warning(
            identifier=p.text("id", required=True),
            sender=p.text("sender", required=True),
            sent=p.required_time("sent"),
            status=p.choice("status", "status", required=True),
            msg_type=p.choice("messageType", "msgType", required=True),
            scope=p.choice("scope", "scope") or _DEFAULT_SCOPE,
            references=p.references(),
            language=p.text("language"),
            event=event,
            category=(category,) if (category := p.text("category")) else (),
            urgency=p.choice("urgency", "urgency"),
            severity=p.choice("severity", "severity"),
            certainty=p.choice("certainty", "certainty"),
            headline=headline,
            description=p.text("description"),
            instruction=p.text("instruction"),
            sender_name=p.text("senderName"),
            effective=p.time("effective"),
            onset=p.time("onset"),
            expires=p.time("expires"),
            colour=signal_colour(event, headline, parameters),
            areas=(Area(p.text("areaDesc"), p.pairs("geocode"), _polygons(where, feature)),),
            parameters=parameters,
            event_codes=p.pairs("eventCode"),
        )
    )


class _Properties:
    """Typed access to one feature's properties; null and "" both read as absent."""

    def __init__(self, where: str, properties: object) -> None:
        if not isinstance(properties, dict):
            raise ParseError(f"{where} is {shown(properties)}, not an object")
        self.where, self.p = where, properties

    def text(self, name: str, *, required: bool = False) -> str:
        raw = self.p.get(name)
        if raw is None or raw == "":
            if required:
                raise ParseError(f"{self.where}.{name}: missing")
            return ""
        if not isinstance(raw, str):
            raise ParseError(f"{self.where}.{name}: {shown(raw)} is not a string")
        return raw.strip()

    def choice(self, name: str, cap_name: str, *, required: bool = False) -> str:
        """A CAP closed-list value, in CAP's spelling."""
        value = self.text(name, required=required)
        try:
            return _closed(cap_name, value) if value else ""
        except ParseError as exc:
            raise ParseError(f"{self.where}.{name}: {exc}") from None

    def time(self, name: str) -> datetime | None:
        raw = self.p.get(name)
        return None if raw is None or raw == "" else json_time(f"{self.where}.{name}", raw)

    def required_time(self, name: str) -> datetime:
        return json_time(f"{self.where}.{name}", self.text(name, required=True))

    def pairs(self, name: str) -> Pairs:
        """``{"UGC": ["ORZ001", …], …}`` as ``(("UGC", "ORZ001"), …)``, keys in order."""
        raw = self.p.get(name)
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            raise ParseError(f"{self.where}.{name}: {shown(raw)} is not an object")
        return tuple(
            (key, value) for key, many in raw.items() for value in self._strings(name, key, many)
        )

    def _strings(self, name: str, key: str, values: object) -> list[str]:
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ParseError(f"{self.where}.{name}.{key}: {shown(values)} is not a list of strings")
        return [value.strip() for value in values]

    def references(self) -> tuple[str, ...]:
        """Each ``{identifier, sender, sent}`` as CAP's "sender,identifier,sent" triple."""
        raw = self.p.get("references") or []
        if not isinstance(raw, list):
            raise ParseError(f"{self.where}.references: {shown(raw)} is not a list")
        return tuple(self._reference(index, ref) for index, ref in enumerate(raw))

    def _reference(self, index: int, ref: object) -> str:
        where = f"{self.where}.references.{index}"
        fields = _Properties(where, ref)
        parts = [fields.text(name, required=True) for name in ("sender", "identifier", "sent")]
        json_time(f"{where}.sent", parts[2])  # a reference must still name a real time
        if any("," in part or " " in part for part in parts):
            raise ParseError(f"{where}: a part holds ',' or a space, which CAP references forbid")
        return ",".join(parts)


def _polygons(where: str, feature: dict[str, object]) -> tuple[str, ...]:
    geometry = feature.get("geometry")
    if geometry is None:
        return ()
    where += "geometry"
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
    if kind not in ("Polygon", "MultiPolygon") or not isinstance(coordinates, list):
        raise ParseError(f"{where}: {shown(geometry)} is not a Polygon or MultiPolygon")
    where += ".coordinates"
    if kind == "Polygon":
        return (_outer_ring(where, coordinates),)
    return tuple(_outer_ring(f"{where}.{i}", polygon) for i, polygon in enumerate(coordinates))


def _outer_ring(where: str, polygon: object) -> str:
    """A polygon's outer ring as one CAP polygon string; CAP needs ≥ 4 pairs, first = last."""
    ring = polygon[0] if isinstance(polygon, list) and polygon else None
    if not isinstance(ring, list) or len(ring) < 4 or ring[0] != ring[-1]:
        raise ParseError(f"{where}.0: not a closed ring of at least 4 positions")
    return " ".join(_position(f"{where}.0.{i}", position) for i, position in enumerate(ring))


def _position(where: str, position: object) -> str:
    """GeoJSON ``[lon, lat]`` as CAP ``"lat,lon"``, range-checked so a swap is caught."""
    if not isinstance(position, list) or len(position) < 2:
        raise ParseError(f"{where}: {shown(position)} is not a [lon, lat] position")
    lon, lat = number(where, position[0]), number(where, position[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ParseError(f"{where}: [{lon}, {lat}] is outside lon -180..180, lat -90..90")
    return f"{_decimal(lat)},{_decimal(lon)}"


def _decimal(value: float) -> str:
    """Plain decimal notation (never "1e-05"), as short as the float allows."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
