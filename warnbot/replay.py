"""Replay feed payloads through the rules without a store: ``warnbot rules test``.

Pure: warnings and readings in time order, incidents kept in memory, and every
transition returned with the time and reason it happened. What an office uses
to check new rules against last season's feeds before the next typhoon.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from warnbot.evaluate import OpenIncident, Transition, evaluate, evaluate_observations
from warnbot.model import Incident, LevelPolicy, Observation
from warnbot.model import Warning as CapWarning
from warnbot.rules import Rule


@dataclasses.dataclass(frozen=True)
class Replayed:
    at: datetime
    transition: Transition


def replay(rules: Sequence[Rule], items: Iterable[CapWarning | Observation]) -> list[Replayed]:
    """Every incident transition the items cause, in time order."""
    opened: dict[str, OpenIncident] = {}
    ids = itertools.count(1)
    readings: list[Observation] = []
    out: list[Replayed] = []
    for item in sorted(items, key=_time):
        now = _time(item)
        if isinstance(item, CapWarning):
            changes = evaluate(rules, item, list(opened.values()), now)
        else:
            readings.append(item)
            changes = evaluate_observations(rules, readings, list(opened.values()), now)
        for t in changes:
            _apply(opened, t, item.key if isinstance(item, CapWarning) else None, now, ids)
            out.append(Replayed(now, t))
    return out


def _time(item: CapWarning | Observation) -> datetime:
    return item.sent if isinstance(item, CapWarning) else item.time


def _apply(
    opened: dict[str, OpenIncident],
    t: Transition,
    warning_key: str | None,
    now: datetime,
    ids: Iterator[int],
) -> None:
    """What the app does to the store, done to the in-memory incidents."""
    if t.kind == "lift":
        opened.pop(t.key, None)
    elif t.kind == "open":
        opened[t.key] = (
            Incident(
                id=next(ids),
                key=t.key,
                hazard=t.hazard,
                region_code=t.region_code,
                level=t.level,
                status="open",
                opened_at=now,
                headline=t.headline,
                policy=LevelPolicy({}),
            ),
            warning_key,
        )
    elif t.key in opened:
        opened[t.key] = (dataclasses.replace(opened[t.key][0], level=t.level), warning_key)


def lines(replayed: Iterable[Replayed]) -> list[str]:
    """One line per transition: time, kind, incident, level, reason."""
    return [
        f"{r.at.isoformat()} {r.transition.kind:<9} {r.transition.key} "
        f"{r.transition.level.roman}级 — {r.transition.reason}"
        for r in replayed
    ]
