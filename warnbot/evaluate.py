"""Evaluate: turn a new warning, or the latest readings, into incident transitions.

Pure: ``evaluate(rules, warning, open_incidents, now)`` and
``evaluate_observations(rules, recent, open_incidents, now)`` return what should
change and why; ``app.py`` applies it to the store. One incident per (hazard,
region), whichever feed or rule speaks of it: the key is ``hazard@code`` with the
code in one spelling (``regions.canonical``), so feeds writing 449901 and
449901000000 share one incident.

**Warnings.** A CAP Cancel, or an Update that no rule matches any more, lifts the
incident whose latest warning it references. A warning asking for a higher level
upgrades; one asking for the same level moves the incident onto itself. A warning
asking for a *lower* level downgrades only

* when it is in the incident's own chain — it references the incident's latest
  warning (an Update from that sender saying "now orange") — or
* when that latest warning has expired (``holder_expires`` says so);

otherwise it changes nothing: a lower warning from another sender, or a new Alert
that does not reference the higher one, leaves the higher warning holding the
incident. An incident opened by readings (no latest warning) is never lowered by a
warning. Limit: when the holder is cancelled the incident lifts even if another
sender's lower warning is still in force; that sender's next message reopens it.

**Readings.** See ``evaluate_observations``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from warnbot import regions
from warnbot.model import Incident, Level, Observation
from warnbot.model import Warning as CapWarning
from warnbot.regions import RegionTree
from warnbot.rules import (
    CapRule,
    Reading,
    ThresholdRule,
    cap_rules,
    longest_window_s,
    matched_regions,
    threshold_rules,
)

__all__ = [
    "OpenIncident",
    "Transition",
    "evaluate",
    "evaluate_observations",
    "incident_key",
    "longest_window_s",
]

OpenIncident = tuple[Incident, str | None]  # the incident and the key of its latest warning
AnyRule = CapRule | ThresholdRule


@dataclass(frozen=True)
class Transition:
    """One change to make: ``open``, ``upgrade``, ``downgrade``, ``lift``, or
    ``update`` (same level; the incident now follows the newer warning, so a
    later Update or Cancel that references it finds the incident)."""

    kind: str
    key: str
    hazard: str
    region_code: str
    level: Level
    headline: str
    reason: str
    incident_id: int | None = None


def incident_key(hazard: str, region_code: str) -> str:
    """The dedup key of the one incident for ``hazard`` in ``region_code``."""
    code = regions.canonical(region_code) if regions.is_code(region_code) else region_code
    return f"{hazard}@{code}"


# --- warnings -------------------------------------------------------------------------------


def evaluate(
    rules: Sequence[AnyRule],
    w: CapWarning,
    open_incidents: Sequence[OpenIncident],
    now: datetime,
    *,
    tree: RegionTree | None = None,
    holder_expires: Mapping[str, datetime | None] | None = None,
) -> list[Transition]:
    """What ``w`` changes. Exercises and tests change nothing; a Cancel always lifts;
    an expired Alert or Update opens nothing. ``tree`` lets polygons and circles match
    regions; ``holder_expires`` maps an open incident's latest-warning key to that
    warning's expiry, so that once it has expired a lower warning may downgrade."""
    if w.status != "Actual":
        return []
    referenced = _referenced(w, open_incidents)
    if w.msg_type == "Cancel":
        return [_lift(i, f"CAP Cancel {w.identifier}") for i in referenced]
    if w.expires is not None and w.expires <= now:
        return []
    wanted = _wanted_levels(cap_rules(rules), w, tree)
    by_key = {i.key: (i, wkey) for i, wkey in open_incidents}
    chain = {i.id for i in referenced}
    expired = _expired(by_key.values(), holder_expires or {}, now)
    changes = [
        _change(by_key.get(key), key, level, w, name, chain | expired)
        for key, (level, name) in sorted(wanted.items())
    ]
    dropped = [
        _lift(i, f"CAP Update {w.identifier}: no rule matches any more")
        for i in referenced
        if i.key not in wanted
    ]
    return [t for t in changes if t is not None] + dropped


def _wanted_levels(
    rules: Sequence[CapRule], w: CapWarning, tree: RegionTree | None
) -> dict[str, tuple[Level, str]]:
    """The highest level any rule asks for, per incident key."""
    wanted: dict[str, tuple[Level, str]] = {}
    for rule in rules:
        for code in matched_regions(rule, w, tree):
            key = incident_key(rule.hazard, code)
            if key not in wanted or rule.level.outranks(wanted[key][0]):
                wanted[key] = (rule.level, rule.name)
    return wanted


def _expired(
    opened: Iterable[OpenIncident], expires: Mapping[str, datetime | None], now: datetime
) -> set[int]:
    """Ids of incidents whose latest warning has expired: any warning may lower them."""
    return {i.id for i, wkey in opened if wkey and (t := expires.get(wkey)) and t <= now}


def _change(
    current: OpenIncident | None,
    key: str,
    level: Level,
    w: CapWarning,
    rule_name: str,
    lowerable: set[int],
) -> Transition | None:
    """The transition for one key, or None when a lower warning may not lower it."""
    hazard, region = key.split("@", 1)
    reason = f"rule {rule_name!r} matched {w.event!r} ({w.identifier})"
    headline = w.headline or w.event
    if current is None:
        return Transition("open", key, hazard, region, level, headline, reason)
    incident = current[0]
    if level == incident.level:
        kind = "update"  # same level, newer warning: the incident follows it
    elif level.outranks(incident.level):
        kind = "upgrade"
    elif incident.id in lowerable:
        kind = "downgrade"
    else:
        return None  # a higher warning of another chain still holds the incident
    return Transition(kind, key, hazard, region, level, headline, reason, incident.id)


def lapsed(
    open_incidents: Sequence[OpenIncident], expiries: Mapping[str, datetime | None], now: datetime
) -> list[Transition]:
    """Lift (解除) the incidents whose latest warning has expired: an office's response
    ends with its warning even when no Cancel comes. Incidents held by readings or
    opened by hand (no warning) are not touched."""
    return [
        _lift(i, f"CAP warning {key} expired at {expiries[key]:%Y-%m-%d %H:%M}Z")
        for i, key in open_incidents
        if key is not None and (expires := expiries.get(key)) is not None and expires <= now
    ]


def _lift(incident: Incident, reason: str) -> Transition:
    return Transition(
        "lift",
        incident.key,
        incident.hazard,
        incident.region_code,
        incident.level,
        incident.headline,
        reason,
        incident.id,
    )


def _referenced(w: CapWarning, open_incidents: Sequence[OpenIncident]) -> list[Incident]:
    """Open incidents whose latest warning ``w`` references (by sender+identifier:
    real feeds get the sent-time in references wrong by a second)."""
    keys = {",".join(r.split(",")[:2]) for r in w.references}
    return [i for i, wkey in open_incidents if wkey in keys]


# --- readings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Judgement:
    """One threshold rule's verdict now: whether it asks for its level, and the evidence.

    ``clear_since`` is set when a level already reached no longer holds: the last time
    it did (or the incident's opening), from which the hold time runs.
    """

    rule: ThresholdRule
    active: bool
    reading: Reading | None
    clear_since: datetime | None = None


def evaluate_observations(
    rules: Sequence[AnyRule],
    recent: Sequence[Observation],
    open_incidents: Sequence[OpenIncident],
    now: datetime,
) -> list[Transition]:
    """What the readings change, per (hazard, region) of the threshold rules.

    ``recent`` must hold every reading within ``longest_window_s(rules)`` of ``now``
    (the longest window plus hold time); readings after ``now`` are ignored.

    A rule above the incident's level (or any rule, with none open) asks for its level
    when its measure trips the threshold. A rule at or below the incident's level keeps
    asking while the measure holds within the hysteresis, and for ``hold_s`` after it
    last did. That last time is read from ``recent``, not kept as state: the latest
    reading that held, or the incident's ``opened_at`` if later (it held then). So a
    level reached by tripping is kept at least ``hold_s``, while a level reached by a
    downgrade goes as soon as its own rule has been clear for ``hold_s``, which may have
    begun before the downgrade. The highest level asked for opens, upgrades or
    downgrades the incident; none lifts it.
    A rule with no readings at all keeps a level it holds: silence never lifts.
    Readings only raise an incident that follows a CAP warning: lowering it is the
    warning chain's business.
    """
    by_key: dict[str, list[ThresholdRule]] = defaultdict(list)
    for rule in threshold_rules(rules):
        by_key[incident_key(rule.hazard, rule.region_code)].append(rule)
    opened = {i.key: (i, wkey) for i, wkey in open_incidents}
    changes = (_observed(key, by_key[key], recent, opened.get(key), now) for key in sorted(by_key))
    return [t for t in changes if t is not None]


def _observed(
    key: str,
    rules: list[ThresholdRule],
    recent: Sequence[Observation],
    current: OpenIncident | None,
    now: datetime,
) -> Transition | None:
    incident, warning_key = current or (None, None)
    verdicts = [_judge(r, recent, incident, now) for r in rules]
    top = min((v for v in verdicts if v.active), key=lambda v: v.rule.level.value, default=None)
    if incident is None:
        return _observed_open(key, top) if top else None
    if top is not None and top.rule.level.outranks(incident.level):
        return _observed_move("upgrade", incident, top, [top])
    if not _lowerable(incident, warning_key, top, verdicts):
        return None
    cleared = [v for v in verdicts if v.clear_since is not None and v is not top]
    if top is None:
        return _observed_move("lift", incident, None, cleared)
    return _observed_move("downgrade", incident, top, [*cleared, top])


def _lowerable(
    incident: Incident, warning_key: str | None, top: _Judgement | None, verdicts: list[_Judgement]
) -> bool:
    """Readings lower an incident only if they hold it (it follows no CAP warning), the
    level actually falls, and no rule at or below its level has gone silent."""
    if warning_key is not None or (top is not None and top.rule.level == incident.level):
        return False
    return not any(v.active and v.reading is None for v in verdicts)


def _judge(
    rule: ThresholdRule, recent: Sequence[Observation], incident: Incident | None, now: datetime
) -> _Judgement:
    series = rule.measured(recent, now)
    reached = incident is not None and not rule.level.outranks(incident.level)
    if not series:
        return _Judgement(rule, reached, None)
    worst = rule.worst(s[-1] for s in series.values())
    if not reached:
        return _Judgement(rule, rule.trips(worst.value), worst)
    if rule.holds(worst.value):
        return _Judgement(rule, True, worst)
    assert incident is not None
    held = [r.time for s in series.values() for r in s if rule.holds(r.value)]
    since = max([incident.opened_at, *held])
    return _Judgement(rule, (now - since).total_seconds() < rule.hold_s, worst, since)


def _observed_open(key: str, top: _Judgement) -> Transition:
    hazard, region = key.split("@", 1)
    r, reading = top.rule, top.reading
    assert reading is not None  # a rule with no readings is active only when reached
    amount = f"{reading.value:g} {reading.unit}".strip()
    headline = f"{r.name}（{reading.label} {amount}）"
    return Transition("open", key, hazard, region, r.level, headline, _why(top))


def _observed_move(
    kind: str, incident: Incident, top: _Judgement | None, evidence: list[_Judgement]
) -> Transition:
    level = top.rule.level if top else incident.level
    reason = "; ".join(_why(v) for v in evidence) or "no rule holds"
    return Transition(
        kind,
        incident.key,
        incident.hazard,
        incident.region_code,
        level,
        incident.headline,
        reason,
        incident.id,
    )


def _why(v: _Judgement) -> str:
    """The value, the threshold and the rule, in words."""
    r = v.rule
    if v.reading is None:
        return f"rule {r.name!r}: no readings of {r.quantity}; its level holds"
    sign = "≥" if r.above is not None else "≤"
    value = f"{r.describe()} at {v.reading.label} is {v.reading.value:g} {v.reading.unit}".rstrip()
    if v.clear_since is None:
        return f"rule {r.name!r} ({r.level.roman}级): {value}; threshold {sign} {r.threshold:g}"
    return (
        f"rule {r.name!r}: {value}; clear of {r.clears_at:g} (threshold {r.threshold:g}, "
        f"hysteresis {r.hysteresis:g}) since {v.clear_since.isoformat()}, hold {r.hold_s:g} s"
    )
