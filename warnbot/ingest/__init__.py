"""Feed parsers, one module per format, each a pure ``parse(data: bytes, …)``.

:data:`FORMATS` names them for the config's ``format =`` key; :func:`sniff` guesses the name
from the bytes when the config leaves it out; :func:`to_json` gives the one normalized JSON
shape that ``warnbot feeds parse`` prints and the JSON API serves.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from warnbot.errors import ParseError
from warnbot.ingest import atom, cap, ea, generic, geojson, usgs
from warnbot.model import Observation, Warning

FORMATS: dict[str, Callable[..., object]] = {
    "cap": cap.parse,  # one CAP <alert> → Warning
    "atom": atom.parse,  # Atom/RSS index of CAP → list[atom.Entry]
    "geojson": geojson.parse,  # api.weather.gov alerts → list[Warning]
    "usgs": usgs.parse,  # NWIS IV JSON → list[Observation]
    "ea": ea.parse,  # EA flood-monitoring JSON → list[Observation]
    "json": generic.parse,  # any JSON, with a generic.JsonMapping → list[Observation]
}

# What may precede the root element: a BOM, the declaration, comments, PIs, a DOCTYPE.
_PROLOG = re.compile(
    rb"(?:\xef\xbb\xbf|\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)*", re.S
)
_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")
_XML_ROOTS = {b"alert": "cap", b"alerts": "cap", b"feed": "atom", b"rss": "atom"}


def sniff(data: bytes) -> str:
    """The :data:`FORMATS` name the bytes look like; ParseError when none fits.

    XML by its root element (``alert`` → cap, ``feed``/``rss`` → atom; an ``<alerts>``
    wrapper goes to cap, which explains why it refuses it). JSON by its keys: ``type``
    FeatureCollection/Feature → geojson, ``value.timeSeries`` → usgs, ``items`` with ``meta``
    → ea; any other JSON is "json", which needs a mapping to be read.
    """
    start = _PROLOG.sub(b"", data, count=1)
    if start[:1] == b"<":
        return _xml_format(start)
    if start[:1] in (b"{", b"["):
        return _json_format(generic.load_json(data))
    raise ParseError(f"neither XML nor JSON: starts with {start[:16]!r}")


def to_json(obj: Warning | Observation) -> dict[str, Any]:
    """One JSON-ready dict: ``kind`` "warning"/"observation", ISO 8601 times, enum values.

    Pairs (geocodes, parameters, event codes) become two-item lists, areas objects.
    """
    if isinstance(obj, Warning):
        kind = "warning"
    elif isinstance(obj, Observation):
        kind = "observation"
    else:
        raise TypeError(f"to_json takes a Warning or Observation, not {type(obj).__name__}")
    return {"kind": kind, **_plain(dataclasses.asdict(obj))}


def _xml_format(start: bytes) -> str:
    root = _ROOT.match(start)
    if root is None:
        raise ParseError(f"XML without a root element: starts with {start[:16]!r}")
    if root[1] not in _XML_ROOTS:
        name = root[1].decode("ascii")
        raise ParseError(f"XML root <{name}> is none of CAP <alert>, Atom <feed>, RSS <rss>")
    return _XML_ROOTS[root[1]]


def _json_format(doc: object) -> str:
    if not isinstance(doc, dict):
        return "json"
    if doc.get("type") in ("FeatureCollection", "Feature"):
        return "geojson"
    if isinstance(generic.lookup(doc, "value.timeSeries"), list):
        return "usgs"
    if "items" in doc and "meta" in doc:
        return "ea"
    return "json"


def _plain(value: Any) -> Any:
    """Recursively JSON-ready: our own dataclass values only, so depth is small."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
