"""Evaluate: turn a new warning into incident transitions, given what is open.

Pure: ``evaluate(rules, warning, open_incidents, now)`` returns what should
change and why; ``app.py`` applies it to the store. One incident per
(hazard, region); a CAP Cancel, or an Update that no rule matches any more,
lifts the incident that the referenced warning opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from warnbot.model import Incident, Level
from warnbot.model import Warning as CapWarning
from warnbot.rules import matched_regions
from warnbot.settings import CapRule

OpenIncident = tuple[Incident, str | None]  # the incident and the key of its latest warning


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


def evaluate(
    rules: Sequence[CapRule], w: CapWarning, open_incidents: Sequence[OpenIncident], now: datetime
) -> list[Transition]:
    """What ``w`` changes. Exercises and tests change nothing; a Cancel always lifts;
    an expired Alert or Update opens nothing."""
    if w.status != "Actual":
        return []
    referenced = _referenced(w, open_incidents)
    if w.msg_type == "Cancel":
        return [_lift(i, f"CAP Cancel {w.identifier}") for i in referenced]
    if w.expires is not None and w.expires <= now:
        return []
    wanted = _wanted_levels(rules, w)
    by_key = {i.key: i for i, _ in open_incidents}
    changes = [
        _change(by_key.get(key), key, level, w, name)
        for key, (level, name) in sorted(wanted.items())
    ]
    dropped = [
        _lift(i, f"CAP Update {w.identifier}: no rule matches any more")
        for i in referenced
        if i.key not in wanted
    ]
    return changes + dropped


def incident_key(hazard: str, region_code: str) -> str:
    return f"{hazard}@{region_code}"


def _wanted_levels(rules: Sequence[CapRule], w: CapWarning) -> dict[str, tuple[Level, str]]:
    """The highest level any rule asks for, per incident key."""
    wanted: dict[str, tuple[Level, str]] = {}
    for rule in rules:
        for code in matched_regions(rule, w):
            key = incident_key(rule.hazard, code)
            if key not in wanted or rule.level.outranks(wanted[key][0]):
                wanted[key] = (rule.level, rule.name)
    return wanted


def _change(
    current: Incident | None, key: str, level: Level, w: CapWarning, rule_name: str
) -> Transition:
    hazard, region = key.split("@", 1)
    reason = f"rule {rule_name!r} matched {w.event!r} ({w.identifier})"
    headline = w.headline or w.event
    if current is None:
        return Transition("open", key, hazard, region, level, headline, reason)
    if level == current.level:
        kind = "update"  # same level, newer warning: the incident follows it
    else:
        kind = "upgrade" if level.outranks(current.level) else "downgrade"
    return Transition(kind, key, hazard, region, level, headline, reason, current.id)


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
