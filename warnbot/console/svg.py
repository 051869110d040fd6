"""Pictures as plain data for SVG templates, drawn offline: no tiles, no scripts. Pure.

``region_map`` projects the region outlines of the tree (lon/lat degrees) onto
an SVG box and colours each by its confirmation rate; ``confirmation_chart``
draws the share of each tier confirmed over time, against each tier's deadline.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from warnbot import regions as codes
from warnbot.model import Request, Tier
from warnbot.regions import Region, RegionTree

_Project = Callable[[float, float], tuple[float, float]]
_Axis = Callable[[datetime], float]
_Share = Callable[[float], float]

WIDTH = 480.0
MAX_HEIGHT = 360.0
PAD = 8.0
NO_DATA = "#d0d4da"
TIER_COLOURS = {
    Tier.CITY: "#6a3d9a",
    Tier.COUNTY: "#1f78b4",
    Tier.TOWNSHIP: "#33a02c",
    Tier.VILLAGE: "#e6550d",
}


@dataclass(frozen=True)
class MapShape:
    code: str
    name: str
    path: str  # SVG path data
    fill: str
    rate: float | None  # None: nobody asked here
    answered: int
    total: int
    label_x: float
    label_y: float


@dataclass(frozen=True)
class RegionMap:
    width: float
    height: float
    shapes: list[MapShape]


def rate_colour(rate: float | None) -> str:
    """Red at 0 %, amber at 50 %, green at 100 %; grey when nobody was asked."""
    if rate is None:
        return NO_DATA
    stops = [(0.0, (203, 24, 29)), (0.5, (253, 174, 97)), (1.0, (26, 152, 80))]
    for (r0, c0), (r1, c1) in itertools.pairwise(stops):
        if rate <= r1:
            t = (rate - r0) / (r1 - r0)
            mixed = (round(a + (b - a) * t) for a, b in zip(c0, c1, strict=True))
            return "#" + "".join(f"{c:02x}" for c in mixed)
    return "#1a9850"


def map_regions(tree: RegionTree, code: str) -> list[Region]:
    """The deepest outlined regions inside ``code`` (or ``code`` itself): what to colour."""
    if code not in tree:
        return []
    inside = [r for r in tree.descendants(code) if r.shape is not None]
    if not inside:
        own = tree.get(code)
        return [own] if own.shape is not None else []
    deepest = max(len(codes.prefix(r.code)) for r in inside)
    return [r for r in inside if len(codes.prefix(r.code)) == deepest]


def region_map(
    tree: RegionTree | None, code: str, tallies: Mapping[str, tuple[int, int]]
) -> RegionMap | None:
    """The map of ``code``; ``tallies`` maps each person's region code to (answered, total)."""
    shown = map_regions(tree, code) if tree else []
    if not shown:
        return None
    minx, miny, maxx, maxy = _bounds([r.shape for r in shown if r.shape is not None])
    squash = math.cos(math.radians((miny + maxy) / 2))  # degrees of longitude are shorter
    scale = min(
        (WIDTH - 2 * PAD) / max((maxx - minx) * squash, 1e-9),
        (MAX_HEIGHT - 2 * PAD) / max(maxy - miny, 1e-9),  # a tall region must not fill the page
    )
    width = (maxx - minx) * squash * scale + 2 * PAD
    height = (maxy - miny) * scale + 2 * PAD

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return PAD + (lon - minx) * squash * scale, PAD + (maxy - lat) * scale

    return RegionMap(round(width, 1), round(height, 1), [_shape(r, tallies, xy) for r in shown])


def _shape(region: Region, tallies: Mapping[str, tuple[int, int]], xy: _Project) -> MapShape:
    answered = sum(a for c, (a, _) in tallies.items() if c and region.covers(c))
    total = sum(t for c, (_, t) in tallies.items() if c and region.covers(c))
    rate = answered / total if total else None
    assert region.shape is not None
    centre = region.shape.representative_point()
    lx, ly = xy(centre.x, centre.y)
    return MapShape(
        region.code,
        region.name,
        _path(region.shape, xy),
        rate_colour(rate),
        rate,
        answered,
        total,
        round(lx, 1),
        round(ly, 1),
    )


def _bounds(shapes: Sequence[BaseGeometry]) -> tuple[float, float, float, float]:
    boxes = [s.bounds for s in shapes]
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _path(shape: BaseGeometry, xy: _Project) -> str:
    polygons = list(shape.geoms) if isinstance(shape, MultiPolygon) else [shape]
    parts = []
    for polygon in polygons:
        if not isinstance(polygon, Polygon):
            continue
        for ring in [polygon.exterior, *polygon.interiors]:
            points = [xy(x, y) for x, y in ring.coords]
            parts.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points) + " Z")
    return " ".join(parts)


# --- the chart ------------------------------------------------------------------------------

CHART_W, CHART_H = 480.0, 200.0
LEFT, BOTTOM, TOP, RIGHT = 36.0, 24.0, 10.0, 10.0


@dataclass(frozen=True)
class Series:
    tier: Tier
    colour: str
    points: str  # SVG polyline points
    deadline_x: float | None
    answered: int
    total: int


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    series: list[Series]
    span_s: float
    ticks: list[tuple[float, str]]  # x, label (minutes after opening)
    plot: tuple[float, float, float, float]  # left, top, right, bottom


def confirmation_chart(
    requests: Iterable[Request], opened_at: datetime, now: datetime
) -> Chart | None:
    """Per tier, the share confirmed over time since ``opened_at``; None before anyone is asked."""
    rows = list(requests)
    if not rows:
        return None
    ends = [now, *(r.deadline for r in rows)]
    span_s = max((max(ends) - opened_at).total_seconds(), 60.0)
    x0, x1 = LEFT, CHART_W - RIGHT
    y0, y1 = CHART_H - BOTTOM, TOP

    def x(at: datetime) -> float:
        return round(x0 + (x1 - x0) * (at - opened_at).total_seconds() / span_s, 1)

    def y(share: float) -> float:
        return round(y0 - (y0 - y1) * share, 1)

    series = []
    for tier in Tier:
        mine = [r for r in rows if r.tier == tier]
        if mine:
            series.append(_series(tier, mine, opened_at, now, x, y))
    step = _tick_step(span_s)
    ticks = [(x0 + (x1 - x0) * t / span_s, f"{t / 60:g}") for t in _range(0, span_s, step)]
    return Chart(CHART_W, CHART_H, series, span_s, ticks, (x0, y1, x1, y0))


def _series(
    tier: Tier,
    rows: list[Request],
    opened_at: datetime,
    now: datetime,
    x: _Axis,
    y: _Share,
) -> Series:
    times = sorted(r.confirmed_at for r in rows if r.confirmed_at is not None)
    points = [(x(opened_at), y(0.0))]
    for n, at in enumerate(times, start=1):
        points += [(x(at), y((n - 1) / len(rows))), (x(at), y(n / len(rows)))]
    points.append((x(max(now, times[-1] if times else now)), y(len(times) / len(rows))))
    deadline = max(r.deadline for r in rows)
    return Series(
        tier,
        TIER_COLOURS[tier],
        " ".join(f"{a},{b}" for a, b in points),
        x(deadline),
        len(times),
        len(rows),
    )


def _tick_step(span_s: float) -> float:
    for step in (60, 120, 300, 600, 900, 1800, 3600, 7200, 21600):
        if span_s / step <= 8:
            return float(step)
    return 43200.0


def _range(start: float, stop: float, step: float) -> list[float]:
    return [start + i * step for i in range(int((stop - start) // step) + 1)]
