"""Administrative division codes (GB/T 2260 and the statistical 9/12-digit codes).

A code's *prefix* is its significant part: ``440100`` (a city) → ``4401``,
``440000`` (a province) → ``44``, ``440123001000`` (a township written in 12
digits) → ``440123001``. A region contains every code that starts with its prefix.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
import shapely.geometry
import shapely.prepared
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from shapely import affinity
from shapely.errors import ShapelyError
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.prepared import PreparedGeometry

from warnbot.errors import ConfigError
from warnbot.model import Area


def prefix(code: str) -> str:
    """The significant digits of a division code."""
    code = code.strip()
    # isascii: str.isdigit() also accepts full-width and other Unicode digits ("４４９９０１"),
    # which would pass here and then never match an ASCII code.
    if not (code.isascii() and code.isdigit()) or len(code) not in (6, 9, 12):
        raise ValueError(f"not an administrative division code: {code!r}")
    while len(code) > 6 and code.endswith("000"):
        code = code[:-3]
    while len(code) > 2 and len(code) <= 6 and code.endswith("00"):
        code = code[:-2]
    return code


def canonical(code: str) -> str:
    """One spelling per region: 6 digits down to the county, 9 for a township, 12 for a
    village (``449901000000`` → ``449901``), so feeds that write codes differently still
    name the same incident."""
    p = prefix(code)
    return p.ljust(6, "0") if len(p) <= 6 else p


def is_code(text: str) -> bool:
    """True for a well-formed 6, 9 or 12 digit division code."""
    try:
        prefix(text)
    except ValueError:
        return False
    return True


def contains(outer: str, inner: str) -> bool:
    """True when region ``inner`` lies within (or is) region ``outer``."""
    return prefix(inner).startswith(prefix(outer))


def related(a: str, b: str) -> bool:
    """True when one region contains the other: the people of an incident's region
    and of the offices above it are all concerned by it."""
    return contains(a, b) or contains(b, a)


# --- the region tree ------------------------------------------------------------------------

_TIERS = {2: "province", 4: "city", 6: "county", 9: "township", 12: "village"}
_KM_PER_DEGREE_LAT = 110.574
_KM_PER_DEGREE_LON_AT_EQUATOR = 111.320


@dataclass(frozen=True)
class Region:
    """One division of the tree. ``shape`` is its own outline, else the union of the
    outlines drawn below it, else None; shapes are in (lon, lat) degrees."""

    code: str
    name: str
    parent: str | None = None  # the code of the nearest region above it in the tree
    shape: BaseGeometry | None = None

    @property
    def tier(self) -> str:
        """province, city, county, township or village, read from the code."""
        return _TIERS[len(prefix(self.code))]

    def covers(self, code: str) -> bool:
        """True for this region and every division inside it: an incident for a county
        covers its townships and villages."""
        return contains(self.code, code)


@dataclass(frozen=True)
class RegionTree:
    """The office's regions, province → city → county → township → village.

    Regions are keyed by code prefix, so any spelling of a code finds its region
    (``449901`` and ``449901000000`` are one county).
    """

    regions: Mapping[str, Region]
    # Prefixes of the regions whose children's outlines cover their own: only such a
    # region may stand for its children (see ``regions_touched``).
    tiled: frozenset[str] = frozenset()

    def get(self, code: str) -> Region:
        """The region ``code`` names; KeyError if the tree does not have it."""
        return self.regions[prefix(code)]

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and is_code(code) and prefix(code) in self.regions

    def ancestors(self, code: str) -> list[Region]:
        """The regions of the tree above ``code``, nearest first (``code`` need not be in it)."""
        above = (self.regions.get(p) for p in _prefixes_above(prefix(code)))
        return [r for r in above if r is not None]

    def descendants(self, code: str) -> list[Region]:
        """Every region of the tree inside ``code``, in code order."""
        inner = prefix(code)
        found = [r for p, r in self.regions.items() if p != inner and p.startswith(inner)]
        return sorted(found, key=lambda r: prefix(r.code))

    def children(self, code: str) -> list[Region]:
        """The regions whose nearest region above, in the tree, is ``code``."""
        own = self.get(code).code
        return [r for r in self.descendants(code) if r.parent == own]

    def roots(self) -> list[Region]:
        return sorted((r for r in self.regions.values() if r.parent is None), key=lambda r: r.code)


def _prefixes_above(p: str) -> list[str]:
    """The prefixes of the divisions above ``p``, nearest first: 449901001 → 449901, 4499, 44."""
    return [p[:n] for n in (9, 6, 4, 2) if n < len(p)]


def build_tree(entries: Sequence[tuple[str, str, BaseGeometry | None]]) -> RegionTree:
    """A tree from (code, name, own outline) triples; parents are read from the codes."""
    own = {prefix(code): (code, name, shape) for code, name, shape in entries}
    regions: dict[str, Region] = {}
    for p in sorted(own, key=len, reverse=True):  # villages first, so children are known
        code, name, shape = own[p]
        parent = next((own[a][0] for a in _prefixes_above(p) if a in own), None)
        below = [r.shape for q, r in regions.items() if q.startswith(p) and r.shape is not None]
        regions[p] = Region(code, name, parent, shape if shape is not None else _union(below))
    return RegionTree(dict(sorted(regions.items())), _tiled(regions))


def _tiled(regions: Mapping[str, Region]) -> frozenset[str]:
    return frozenset(p for p, region in regions.items() if _is_tiled(region, regions))


def _is_tiled(region: Region, regions: Mapping[str, Region]) -> bool:
    inner = [r.shape for r in regions.values() if r.parent == region.code and r.shape]
    outline, drawn = region.shape, _union(inner)
    if outline is None or drawn is None:
        return False
    return outline.difference(drawn).area <= 1e-6 * outline.area  # shared edges round off


def _union(shapes: list[BaseGeometry]) -> BaseGeometry | None:
    return shapely.union_all(shapes) if shapes else None


# --- CAP areas against the tree -----------------------------------------------------------------


def regions_touched(area: Area, tree: RegionTree | None) -> list[str]:
    """The division codes a CAP ``<area>`` concerns.

    Geocodes that are division codes count by code. Polygons ("lat,lon lat,lon …") and
    circles ("lat,lon radius_km") count by geometry against ``tree``: going down from
    the top, the deepest regions whose interiors they overlap. A region stands for its
    children when the area overlaps every one of them and their outlines tile it, or
    when the area overlaps none of them (only parts of it no child draws). So a
    polygon over two of a county's three townships names those two; over all three,
    the county.
    """
    codes = {v.strip() for _, v in area.geocodes if is_code(v)}
    shape = area_shape(area)
    if tree is not None and shape is not None:
        prepared = shapely.prepared.prep(shape)
        for root in tree.roots():
            codes.update(_touched(tree, root, shape, prepared))
    return sorted(codes)


def _touched(
    tree: RegionTree, region: Region, shape: BaseGeometry, prepared: PreparedGeometry[BaseGeometry]
) -> list[str]:
    if not _overlaps(region, shape, prepared):
        return []
    drawn = [c for c in tree.children(region.code) if c.shape is not None]
    hit = [c for c in drawn if _overlaps(c, shape, prepared)]
    whole = len(hit) == len(drawn) and prefix(region.code) in tree.tiled
    if not hit or whole:  # only parts no child draws, or every child of a region they tile
        return [region.code]
    return [code for c in hit for code in _touched(tree, c, shape, prepared)]


def _overlaps(
    region: Region, shape: BaseGeometry, prepared: PreparedGeometry[BaseGeometry]
) -> bool:
    """Interiors meet: an area that only shares a border with a region does not concern it."""
    outline = region.shape
    return outline is not None and prepared.intersects(outline) and not shape.touches(outline)


def area_shape(area: Area) -> BaseGeometry | None:
    """The union of an area's polygons and circles, or None; unreadable parts are skipped."""
    parts = [cap_polygon(p) for p in area.polygons] + [cap_circle(c) for c in area.circles]
    return _union([p for p in parts if p is not None])


def cap_polygon(text: str) -> BaseGeometry | None:
    """A CAP polygon ("lat,lon lat,lon …", first = last); self-crossing rings are repaired,
    as real feeds send them (NWS's tiny slivers), rather than dropped."""
    points = [_lon_lat(pair) for pair in text.split()]
    if len(points) < 3 or None in points:
        return None
    return shapely.make_valid(Polygon([p for p in points if p is not None]))


def cap_circle(text: str) -> BaseGeometry | None:
    """A CAP circle ("lat,lon radius_km") as an ellipse in degrees; a zero radius is a point.

    Degrees per km are taken at the centre's latitude, within about 1% at county scale.
    """
    try:
        centre, radius = text.split()
        radius_km = float(radius)
    except ValueError:
        return None
    point = _lon_lat(centre)
    if point is None or not radius_km >= 0:
        return None
    dot = Point(point)
    if radius_km == 0:
        return dot
    dx = radius_km / (_KM_PER_DEGREE_LON_AT_EQUATOR * math.cos(math.radians(point[1])))
    return affinity.scale(
        dot.buffer(1.0, quad_segs=32), xfact=dx, yfact=radius_km / _KM_PER_DEGREE_LAT
    )


def _lon_lat(pair: str) -> tuple[float, float] | None:
    try:
        lat, lon = (float(x) for x in pair.split(","))
    except ValueError:
        return None
    return (lon, lat) if abs(lat) <= 90 and abs(lon) <= 180 else None


# --- the tree file ------------------------------------------------------------------------------

LatLon = tuple[float, float]


class RegionEntry(BaseModel):
    """One region in a tree file. Regions nest under ``children`` or are listed flat (the
    codes say who is inside whom). Outlines are optional: ``polygon`` (one ring of
    [lat, lon] pairs, CAP's order), ``polygons`` (several), or ``geometry`` (GeoJSON
    Polygon/MultiPolygon, [lon, lat] as GeoJSON has it)."""

    model_config = ConfigDict(extra="forbid")

    code: str
    name: str = Field(min_length=1)
    polygon: list[LatLon] | None = None
    polygons: list[list[LatLon]] = Field(default_factory=list)
    geometry: dict[str, Any] | None = None
    children: list[RegionEntry] = Field(default_factory=list)

    @field_validator("code")
    @classmethod
    def _division_code(cls, v: str) -> str:
        if not is_code(v):
            raise ValueError(f"not a 6, 9 or 12 digit division code: {v!r}")
        return v.strip()

    @field_validator("polygon", "polygons", "geometry")
    @classmethod
    def _outline_is_valid(cls, v: Any) -> Any:
        if v:
            try:
                shape = cls._shape(v if isinstance(v, dict) else _rings(v))
            except (ShapelyError, KeyError, TypeError) as e:
                raise ValueError(f"unreadable outline: {e}") from None
            _check_outline(shape)
        return v

    @model_validator(mode="after")
    def _children_inside(self) -> RegionEntry:
        outside = [c.code for c in self.children if not contains(self.code, c.code)]
        if outside:
            raise ValueError(f"children not inside {self.code}: {', '.join(outside)}")
        return self

    def outline(self) -> BaseGeometry | None:
        """This region's own outline, in (lon, lat)."""
        rings = _rings(([self.polygon] if self.polygon else []) + self.polygons)
        parts = ([self._shape(rings)] if rings else []) + (
            [self._shape(self.geometry)] if self.geometry else []
        )
        return _union(parts)

    @staticmethod
    def _shape(v: dict[str, Any] | list[list[LatLon]]) -> BaseGeometry:
        if isinstance(v, dict):
            return shapely.geometry.shape(v)
        return MultiPolygon([Polygon([(lon, lat) for lat, lon in ring]) for ring in v])


def _rings(v: Any) -> list[list[LatLon]]:
    """One ring or a list of rings, as a list of rings."""
    return [v] if v and isinstance(v[0], tuple) else list(v)


def _check_outline(shape: BaseGeometry) -> None:
    if shape.geom_type not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"an outline must be a polygon, not a {shape.geom_type}")
    if not shape.is_valid:
        raise ValueError(f"invalid outline: {shapely.is_valid_reason(shape)}")
    lon0, lat0, lon1, lat1 = shape.bounds
    if not (-90 <= lat0 <= lat1 <= 90 and -180 <= lon0 <= lon1 <= 180):
        raise ValueError("latitude or longitude out of range (rings are [lat, lon] pairs)")


class RegionFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    regions: list[RegionEntry] = Field(min_length=1)


def load_tree(path: Path) -> RegionTree:
    """Read a region tree from TOML or YAML; raises ConfigError listing every problem
    as ``FILE: dotted.key: message``."""
    try:
        parsed = RegionFile.model_validate(_read(path))
    except ValidationError as e:
        locs = (".".join(map(str, err["loc"])) for err in e.errors())
        raise ConfigError(
            [f"{path}: {loc}: {err['msg']}" for loc, err in zip(locs, e.errors(), strict=True)]
        ) from None
    entries = list(_flatten(parsed.regions))
    _refuse_duplicates(path, entries)
    return build_tree([(e.code, e.name, e.outline()) for e in entries])


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return tomllib.loads(text)
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from None
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise ConfigError([f"{path}: {e}"]) from None


def _flatten(entries: list[RegionEntry]) -> Iterator[RegionEntry]:
    for e in entries:
        yield e
        yield from _flatten(e.children)


def _refuse_duplicates(path: Path, entries: list[RegionEntry]) -> None:
    seen: dict[str, str] = {}
    problems = []
    for e in entries:
        if prefix(e.code) in seen:
            problems.append(f"{path}: {e.code}: listed twice (also as {seen[prefix(e.code)]})")
        seen[prefix(e.code)] = e.code
    if problems:
        raise ConfigError(problems)
