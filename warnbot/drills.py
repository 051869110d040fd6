"""Drills (演练): a response run for practice, marked as such, never public. Pure.

Any incident can be a drill (``Incident.drill``): every message it sends
starts with 【演练】 (``mark``), and nothing of it reaches public audiences
(``reaches_public``). An unannounced drill (双盲演练) is planned ahead as a
``DrillPlan``: the administrator sets a window, the moment is drawn uniformly
inside it from a seed stored with the plan (``fire_at``: reproducible, never
outside the window), and the scenario is hidden from everyone but the
administrator until it fires (``redacted``).
"""

from __future__ import annotations

import dataclasses
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from warnbot import regions
from warnbot.model import Incident, Level, LevelPolicy

MARK = "【演练】"
_HIDDEN = "（未公布 hidden until it starts）"


def mark(text: str, drill: bool = True) -> str:
    """``text`` starting with 【演练】 when ``drill``; never marked twice."""
    if not drill or text.lstrip().startswith(MARK):
        return text
    return MARK + text


def drill_filter(text: str, incident: Incident | None) -> str:
    """The jinja2 filter: ``{{ body | drill(incident) }}`` marks a drill's text."""
    return mark(text, incident is not None and incident.drill)


def install(env: Any) -> None:
    """Register the ``drill`` filter on a jinja2 environment (``Renderer.env``)."""
    env.filters["drill"] = drill_filter


def reaches_public(incident: Incident | None) -> bool:
    """False for a drill: public tip SMS, broadcast endpoints and downstream CAP
    never carry an exercise. True for a real incident (and for messages of no
    incident, such as an operator's own test)."""
    return incident is None or not incident.drill


@dataclass(frozen=True)
class DrillPlan:
    """An unannounced drill: a window, a scenario, a level, regions and a seed.

    ``status`` is scheduled → fired (claimed by one process) or → cancelled.
    """

    window_start: datetime
    window_end: datetime
    hazard: str
    headline: str
    level: Level
    regions: tuple[str, ...]
    seed: int
    id: int = 0
    status: str = "scheduled"
    created_by: str = ""
    incident_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.window_start.tzinfo is None or self.window_end.tzinfo is None:
            raise ValueError("drill window times must carry a time zone")
        if self.window_end < self.window_start:
            raise ValueError("drill window ends before it starts")
        if not self.regions:
            raise ValueError("a drill names at least one region")
        bad = [r for r in self.regions if not regions.is_code(r)]
        if bad:
            raise ValueError(f"not administrative division codes: {', '.join(bad)}")


def new_seed() -> int:
    """A seed for a new plan; stored with it so the moment can be recomputed."""
    return secrets.randbits(62)


def fire_at(plan: DrillPlan) -> datetime:
    """The moment the drill fires: uniform over the window (to the microsecond), the
    same for the same seed, never before ``window_start`` nor after ``window_end``."""
    span_us = (plan.window_end - plan.window_start) // timedelta(microseconds=1)
    offset_us = random.Random(plan.seed).randrange(span_us + 1)
    return plan.window_start + timedelta(microseconds=offset_us)


def redacted(plan: DrillPlan, now: datetime) -> dict[str, Any]:
    """What anyone but the administrator may see of a plan: before it fires, only
    that a drill may come in the window — no moment, hazard, headline or level."""
    shown: dict[str, Any] = {
        "id": plan.id,
        "status": plan.status,
        "window_start": plan.window_start,
        "window_end": plan.window_end,
        "regions": list(plan.regions),
    }
    if plan.status == "fired" or (plan.status == "scheduled" and now >= fire_at(plan)):
        return shown | {
            "hazard": plan.hazard,
            "headline": plan.headline,
            "level": plan.level.roman,
            "fire_at": fire_at(plan),
        }
    return shown | {"hazard": _HIDDEN, "headline": _HIDDEN, "level": _HIDDEN, "fire_at": None}


def manual_key(key: str) -> str:
    """The key of a drill started by hand for ``key`` (hazard@region): ``演练:<key>``,
    so a real warning during the drill opens or moves the real incident of that hazard
    and region, never the drill."""
    return f"演练:{key}"


def drafts(plan: DrillPlan, policy: LevelPolicy, now: datetime) -> list[Incident]:
    """The drill incidents a fired plan opens, one per region, marked ``drill``.

    Keys are ``演练:<plan id>:<region>``, so they never merge with a real
    incident of the same hazard and region.
    """
    return [
        Incident(
            id=0,
            key=f"演练:{plan.id}:{regions.canonical(code)}",
            hazard=plan.hazard,
            region_code=regions.canonical(code),
            level=plan.level,
            status="open",
            opened_at=now,
            headline=plan.headline,
            policy=policy,
            drill=True,
            source=f"drill:{plan.id}",
        )
        for code in plan.regions
    ]


def scheduled(
    window_start: datetime,
    window_end: datetime,
    hazard: str,
    headline: str,
    level: Level,
    region_codes: Sequence[str],
    seed: int | None = None,
    created_by: str = "",
) -> DrillPlan:
    """A new plan, with a fresh seed unless one is given (tests and re-runs give one)."""
    return DrillPlan(
        window_start,
        window_end,
        hazard,
        headline,
        level,
        tuple(region_codes),
        new_seed() if seed is None else seed,
        created_by=created_by,
    )


def with_id(plan: DrillPlan, plan_id: int) -> DrillPlan:
    return dataclasses.replace(plan, id=plan_id)
