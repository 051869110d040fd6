"""Rules: which warnings and which readings call for which response level, where.

Two kinds, validated at load by pydantic and pure to apply:

* **CAP match rules** (``kind = "cap"``, the default) pick warnings by event text
  and/or catalogue signal (``signal = "暴雨 橙色"``), colour, severity, certainty and
  urgency, in the rule's regions — by geocode, or by polygon and circle against the
  region tree.
* **Threshold rules** (``kind = "threshold"``, implied by ``quantity``) watch the
  readings of one quantity at some stations or in a region: the latest value, a sum
  over a window (rainfall), or the rise per hour; trip at ≥ ``above`` or ≤ ``below``;
  clear only beyond ``hysteresis`` and after ``hold_s`` (see ``evaluate``).

A bad rule is reported with its index in the key and its name in the message:
``FILE: rules.3.threshold.above: rule '河口站超警戒': Input should be a valid number``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from warnbot import regions, signals
from warnbot.model import Colour, Level, Observation
from warnbot.model import Warning as CapWarning
from warnbot.regions import RegionTree


class _Rule(BaseModel):
    """What every rule has: a name for people, a level, and errors that name it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    level: Level

    @field_validator("level", mode="before")
    @classmethod
    def _parse_level(cls, v: object) -> object:
        return Level.parse(v) if isinstance(v, str) else v

    @model_validator(mode="wrap")
    @classmethod
    def _errors_name_the_rule(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # A rules list of thirty entries is edited by hand: "rules.17" alone is not enough.
        label = _label(data)
        try:
            return handler(data).checked()
        except ValidationError as e:
            errors = [(err["type"], err["loc"], err["msg"], err["input"]) for err in e.errors()]
        except FieldError as e:
            errors = [("value_error", (e.field,), str(e), data)]
        raise _named(cls.__name__, label, errors)

    def checked(self) -> Self:
        """Cross-field checks and derived defaults; raises FieldError saying what is wrong."""
        return self


class FieldError(ValueError):
    """A rule's fields disagree; ``field`` is the key the message is reported under."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _label(data: Any) -> str:
    name = data.get("name") if isinstance(data, dict) else getattr(data, "name", None)
    return f"rule {name!r}" if isinstance(name, str) and name else "unnamed rule"


def _named(
    title: str, label: str, errors: list[tuple[str, tuple[int | str, ...], str, Any]]
) -> ValidationError:
    """The same errors, each message starting with the rule's name."""
    details = [
        InitErrorDetails(
            type=PydanticCustomError(kind, "{rule}: {msg}", {"rule": label, "msg": msg}),
            loc=loc,
            input=value,
        )
        for kind, loc, msg, value in errors
    ]
    return ValidationError.from_exception_data(title, details)


# --- CAP match rules ------------------------------------------------------------------------


class CapRule(_Rule):
    """Map a CAP warning to a response level for the regions it names.

    ``events`` are substrings of the CAP event or headline; ``signal`` is a catalogue
    hazard, optionally with its colour ("暴雨 橙色"), checked against the catalogue and
    matched with ``signals.identify``. A rule with both matches either way.
    """

    kind: Literal["cap"] = "cap"
    hazard: str = Field(default="", description="the incident's hazard; default: the signal's")
    events: list[str] = Field(default_factory=list)
    signal: str | None = None
    colours: list[Colour] = Field(default_factory=list)
    severities: list[str] = Field(default_factory=list)
    certainties: list[str] = Field(default_factory=list)
    urgencies: list[str] = Field(default_factory=list)
    region_codes: list[str] = Field(min_length=1)

    @field_validator("region_codes")
    @classmethod
    def _codes_are_division_codes(cls, v: list[str]) -> list[str]:
        # Checked here, not when a warning arrives: matching would raise on every warning.
        bad = [c for c in v if not regions.is_code(c)]
        if bad:
            raise ValueError(f"not 6, 9 or 12 digit division codes: {', '.join(map(repr, bad))}")
        return v

    def checked(self) -> Self:
        if not self.events and self.signal is None:
            raise FieldError("events", "a CAP rule needs events, a signal, or both")
        if self.signal is None:
            if not self.hazard:
                raise FieldError("hazard", "hazard is required unless a signal names it")
            return self
        try:
            hazard, colour = signals.parse(self.signal)
            colours = self._colours_with(colour)
        except ValueError as e:
            raise FieldError("signal", str(e)) from None
        for c in colours:
            try:
                signals.check_colour(hazard, c)
            except ValueError as e:
                raise FieldError("colours", str(e)) from None
        update = {"signal": hazard.name, "hazard": self.hazard or hazard.name, "colours": colours}
        return self.model_copy(update=update)

    def _colours_with(self, colour: Colour | None) -> list[Colour]:
        if colour is None or self.colours in ([], [colour]):
            return self.colours if colour is None else [colour]
        given = "、".join(c.zh for c in self.colours)
        raise ValueError(f"{self.signal!r} says {colour.zh} but colours says {given}")


def event_matches(rule: CapRule, w: CapWarning) -> bool:
    """An event is a substring of the CAP event or headline, any language; or the rule's
    signal is the catalogue hazard the warning names."""
    text = f"{w.event} {w.headline}".casefold()
    if any(e.casefold() in text for e in rule.events):
        return True
    found = signals.identify(w.event, w.headline) if rule.signal else None
    return found is not None and found.hazard == rule.signal


def qualifiers_match(rule: CapRule, w: CapWarning) -> bool:
    """Colour, severity, certainty and urgency: each list, when given, must hold the warning's."""
    if rule.colours and w.colour not in rule.colours:
        return False
    pairs = (
        (rule.severities, w.severity),
        (rule.certainties, w.certainty),
        (rule.urgencies, w.urgency),
    )
    return all(
        not wanted or value.casefold() in {x.casefold() for x in wanted} for wanted, value in pairs
    )


def matched_regions(rule: CapRule, w: CapWarning, tree: RegionTree | None = None) -> list[str]:
    """The regions of the warning that fall in the rule's regions, or [] if no match.

    Without a tree only geocodes count; with one, polygons and circles too
    (``regions.regions_touched``). A region inside another matched one is dropped: the
    incident for a county already covers its townships.
    """
    if not (event_matches(rule, w) and qualifiers_match(rule, w)):
        return []
    codes = {c for area in w.areas for c in regions.regions_touched(area, tree)}
    inside = [c for c in codes if any(regions.contains(r, c) for r in rule.region_codes)]
    return outermost(inside)


def outermost(codes: Iterable[str]) -> list[str]:
    """``codes`` without those inside another (or spelling the same region twice), sorted."""
    kept: dict[str, str] = {}
    for code in sorted(codes, key=lambda c: (len(regions.prefix(c)), c)):
        if not any(regions.contains(k, code) for k in kept.values()):
            kept[regions.prefix(code)] = code
    return sorted(kept.values())


# --- threshold rules --------------------------------------------------------------------------

Measure = Literal["value", "sum", "rise"]


@dataclass(frozen=True)
class Reading:
    """A rule's measure at one station at one reading's time (a sum, a rise, or the value)."""

    station: str
    label: str  # the station's name when the feed gives one
    time: datetime
    value: float
    unit: str = ""


class ThresholdRule(_Rule):
    """Map readings of one quantity to a response level for one region.

    ``measure``: ``value`` is each reading; ``sum`` adds the readings of the last
    ``window_s`` (rainfall amounts per interval); ``rise`` is the rise per hour since the
    first reading of the last ``window_s``. It trips at ≥ ``above`` (or ≤ ``below``).
    Once its level is held it holds while within ``hysteresis`` of the threshold, and
    lets go only after staying beyond it for ``hold_s``. ``stations`` (empty: every
    station whose region lies in ``region_code``) and ``unit`` (when given, readings in
    another unit are ignored, never converted) say which readings count.
    """

    kind: Literal["threshold"] = "threshold"
    hazard: str = Field(min_length=1)
    quantity: str = Field(min_length=1)
    region_code: str
    stations: list[str] = Field(default_factory=list)
    unit: str | None = None
    measure: Measure = "value"
    window_s: float | None = Field(default=None, gt=0)
    above: float | None = None
    below: float | None = None
    hysteresis: float = Field(default=0.0, ge=0)
    hold_s: float = Field(default=0.0, ge=0)

    @field_validator("region_code")
    @classmethod
    def _division_code(cls, v: str) -> str:
        if not regions.is_code(v):
            raise ValueError(f"not a 6, 9 or 12 digit division code: {v!r}")
        return v

    def checked(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise FieldError("above", "give exactly one of above and below")
        if (self.measure == "value") != (self.window_s is None):
            raise FieldError(
                "window_s", "window_s goes with measure 'sum' or 'rise', and only them"
            )
        if self.measure == "rise" and self.below is not None:
            raise FieldError("below", "a rise is compared with above, not below")
        return self

    @property
    def threshold(self) -> float:
        value = self.above if self.above is not None else self.below
        assert value is not None, "checked() requires above or below"
        return value

    @property
    def clears_at(self) -> float:
        """Beyond this the measure no longer holds a level already reached."""
        if self.above is not None:
            return self.above - self.hysteresis
        return self.threshold + self.hysteresis

    def trips(self, v: float) -> bool:
        return v >= self.threshold if self.above is not None else v <= self.threshold

    def holds(self, v: float) -> bool:
        return v >= self.clears_at if self.above is not None else v <= self.clears_at

    def worst(self, values: Iterable[Reading]) -> Reading:
        """The reading furthest past the threshold."""
        sign = 1 if self.above is not None else -1
        return max(values, key=lambda r: sign * r.value)

    @property
    def lookback_s(self) -> float:
        """How far back readings must reach to judge this rule now."""
        return (self.window_s or 0.0) + self.hold_s

    def watches(self, o: Observation) -> bool:
        if o.quantity != self.quantity or (self.unit is not None and o.unit != self.unit):
            return False
        if self.stations:
            return o.station in self.stations
        return regions.is_code(o.region_code) and regions.contains(self.region_code, o.region_code)

    def measured(self, recent: Iterable[Observation], now: datetime) -> dict[str, list[Reading]]:
        """Per station, the measure at each of its readings up to ``now``, oldest first.

        A reading seen twice (two feeds, same station and time) counts once.
        """
        by_station: dict[str, dict[datetime, Observation]] = defaultdict(dict)
        for o in recent:
            if o.time <= now and self.watches(o):
                by_station[o.station][o.time] = o
        series = {s: [obs[t] for t in sorted(obs)] for s, obs in by_station.items()}
        return {s: readings for s, obs in series.items() if (readings := self._measure(obs))}

    def _measure(self, obs: Sequence[Observation]) -> list[Reading]:
        if self.measure == "value":
            return [_reading(o, o.value, o.unit) for o in obs]
        out = []
        for i, o in enumerate(obs):
            start = next(j for j in range(i + 1) if self._in_window(obs[j], o))
            value = _sum(obs[start : i + 1]) if self.measure == "sum" else _rise(obs[start], o)
            if value is not None:
                out.append(_reading(o, value, o.unit if self.measure == "sum" else f"{o.unit}/h"))
        return out

    def _in_window(self, earlier: Observation, o: Observation) -> bool:
        """A sum covers (t − window, t]: each reading is the amount of the interval before
        it. A rise compares with the reading a full window back, so hourly gauges have one."""
        age_s = (o.time - earlier.time).total_seconds()
        window_s = self.window_s or 0.0
        return age_s < window_s if self.measure == "sum" else age_s <= window_s

    def describe(self) -> str:
        """What is measured, for people: "rainfall sum over 3600 s"."""
        if self.measure == "value":
            return self.quantity
        how = "sum" if self.measure == "sum" else "rise per hour"
        return f"{self.quantity} {how} over {self.window_s:g} s"


def _reading(o: Observation, value: float, unit: str) -> Reading:
    return Reading(o.station, o.station_name or o.station, o.time, value, unit)


def _sum(obs: Sequence[Observation]) -> float:
    return sum(o.value for o in obs)


def _rise(first: Observation, last: Observation) -> float | None:
    hours = (last.time - first.time).total_seconds() / 3600
    return (last.value - first.value) / hours if hours > 0 else None


# --- both kinds -------------------------------------------------------------------------------


def _kind(v: dict[str, Any]) -> str:
    """Which model validates a rule: ``kind`` when given, else a ``quantity`` means threshold.

    An unknown kind goes to the CAP model, whose error then names the rule.
    """
    kind = v.get("kind")
    if kind is None and "quantity" in v:
        return "threshold"
    return "threshold" if kind == "threshold" else "cap"


def _as_rule(v: Any) -> Any:
    """Validate a rule table with the model its kind names, so errors point into that
    model's keys (``rules.3.above``) instead of at every member of a union."""
    if isinstance(v, CapRule | ThresholdRule):
        return v
    if not isinstance(v, dict):
        raise ValueError("a rule is a table of keys: [[rules]]")
    return (ThresholdRule if _kind(v) == "threshold" else CapRule).model_validate(v)


Rule = Annotated[CapRule | ThresholdRule, BeforeValidator(_as_rule)]


def cap_rules(rules: Iterable[CapRule | ThresholdRule]) -> list[CapRule]:
    return [r for r in rules if isinstance(r, CapRule)]


def threshold_rules(rules: Iterable[CapRule | ThresholdRule]) -> list[ThresholdRule]:
    return [r for r in rules if isinstance(r, ThresholdRule)]


def longest_window_s(rules: Iterable[CapRule | ThresholdRule]) -> float:
    """How far back ``recent`` readings must reach for ``evaluate_observations``: the
    longest window plus hold time of any threshold rule."""
    return max((r.lookback_s for r in threshold_rules(rules)), default=0.0)
