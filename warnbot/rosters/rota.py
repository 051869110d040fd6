"""Duty rotas 值班表: who is duty officer 值班员 and leader on shift 带班领导, when, where.

A rota is a table (CSV/XLSX) of shifts — start and end (or a date and two
times), region code, role, and the person by roster key or by name and phone —
or an iCalendar file whose events are shifts, RRULE included (a 24-hour shift
every third day is one event). Times in files are local (Asia/Shanghai unless
configured); inside, every time is UTC.

``on_duty`` is a pure lookup: the shifts of a role covering ``now`` in a region,
or, when the region has none of its own, in the nearest region above it — a
village without a duty officer is covered by its township's, then its county's.

Problems are ``FILE:LINE: what is wrong``; two shifts of one role in one region
that overlap are an error, hours nobody covers are warnings (``gaps``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from warnbot import regions
from warnbot.errors import ConfigError
from warnbot.model import Responder, Tier
from warnbot.rosters import phones

DUTY_OFFICER = "duty_officer"
LEADER_ON_SHIFT = "leader_on_shift"
ROLES = {
    DUTY_OFFICER: ("值班员", "值班", "值班人员", "duty_officer", "duty officer", "duty"),
    LEADER_ON_SHIFT: ("带班领导", "带班", "leader_on_shift", "leader on shift", "leader"),
}
ROLE_ZH = {DUTY_OFFICER: "值班员", LEADER_ON_SHIFT: "带班领导"}
DEFAULT_ZONE = "Asia/Shanghai"
CHECK_HORIZON = timedelta(days=62)  # how far ahead recurring shifts are checked


@dataclass(frozen=True)
class Shift:
    """One person on duty in one role for one region from ``start`` to ``end`` (UTC)."""

    region_code: str  # canonical: 449901, 449901001, …
    role: str  # DUTY_OFFICER or LEADER_ON_SHIFT
    start: datetime
    end: datetime
    name: str
    person_key: str | None = None  # the roster's key, when the person is in it
    phones: tuple[str, ...] = ()  # E.164; the roster's when the person is in it
    where: str = ""  # FILE:LINE of the row or event

    def covers(self, now: datetime) -> bool:
        return self.start <= now < self.end


@dataclass(frozen=True)
class Recurring:
    """An iCalendar event with an RRULE: a shift pattern, expanded when looked up."""

    template: Shift  # who, where, which role; its times are the first occurrence's
    calendar: Any  # an icalendar.Calendar holding just this series, times made aware


@dataclass(frozen=True)
class DutyRota:
    """Fixed shifts plus recurring ones; ``zone`` is how the file wrote its times."""

    shifts: tuple[Shift, ...] = ()
    recurring: tuple[Recurring, ...] = ()
    zone: str = DEFAULT_ZONE
    # Recurring shifts expanded around a UTC day, by day: expanding an RRULE walks it
    # from its first occurrence, too slow to repeat at every escalation tick.
    expanded: dict[datetime, list[Shift]] = field(default_factory=dict, compare=False, repr=False)


# --- lookup -----------------------------------------------------------------------------------


def on_duty(
    rota: DutyRota, region_code: str, now: datetime, role: str = DUTY_OFFICER
) -> list[Shift]:
    """Who holds ``role`` at ``now`` for ``region_code``: the region's own shifts, else
    those of the nearest region above it that has any; [] when none up to the top."""
    current = occurrences(rota, now, now + timedelta(microseconds=1))
    for code in region_chain(region_code):
        found = [s for s in current if s.region_code == code and s.role == role]
        if found:
            return sorted(found, key=lambda s: (s.start, s.name))
    return []


def duty_officers_at(
    rota: DutyRota, region_code: str, now: datetime, people: Mapping[str, Responder]
) -> list[Responder]:
    """The duty officers of an incident's region at ``now``, as persons to message: the
    roster's entry when the rota names a roster key, else a person made from the rota's
    name and phone. This is what escalations and operational alerts route to."""
    return [_person(s, people) for s in on_duty(rota, region_code, now) if s.phones]


@dataclass(frozen=True)
class OnShift:
    """Who is on duty for a region at a moment: duty officers 值班员 and leaders on
    shift 带班领导, as persons to message (see ``duty_officers_at``)."""

    region_code: str
    duty_officers: tuple[Responder, ...]
    leaders: tuple[Responder, ...]

    def line(self) -> str:
        """One line for a terminal, Chinese first: ``值班员 A、B；带班领导 C``."""
        return (
            f"{self.region_code} {ROLE_ZH[DUTY_OFFICER]} duty officer: {_names(self.duty_officers)}"
            f"；{ROLE_ZH[LEADER_ON_SHIFT]} leader on shift: {_names(self.leaders)}"
        )


def on_shift(
    rota: DutyRota,
    region_code: str,
    now: datetime,
    people: Mapping[str, Responder],
    fallback: Sequence[Responder] = (),
) -> OnShift:
    """Both roles of the rota for ``region_code`` at ``now`` (each walking up the tree);
    ``fallback`` are the duty officers when the rota has none then (the roster's)."""
    shifts = on_duty(rota, region_code, now, LEADER_ON_SHIFT)
    leaders = [_person(s, people) for s in shifts if s.phones or s.person_key in people]
    officers = duty_officers_at(rota, region_code, now, people) or list(fallback)
    return OnShift(region_code, tuple(officers), tuple(leaders))


def _names(people: Sequence[Responder]) -> str:
    return "、".join(p.name for p in people) or "无 none"


def region_chain(code: str) -> list[str]:
    """``code`` and the regions above it, nearest first, canonical:
    449901001001 → 449901001001, 449901001, 449901, 449900, 440000."""
    p = regions.prefix(code)
    return [regions.canonical(p[:n].ljust(6, "0")) for n in (12, 9, 6, 4, 2) if n <= len(p)]


def occurrences(rota: DutyRota, start: datetime, end: datetime) -> list[Shift]:
    """Every shift, fixed or recurring, that overlaps [start, end)."""
    found = [s for s in rota.shifts if s.start < end and s.end > start]
    if rota.recurring:
        found += [s for s in _recurring(rota, start, end) if s.start < end and s.end > start]
    return sorted(found, key=lambda s: (s.region_code, s.role, s.start))


def _recurring(rota: DutyRota, start: datetime, end: datetime) -> list[Shift]:
    from warnbot.rosters.rota_ics import expand

    if end - start > timedelta(days=1):
        return [s for r in rota.recurring for s in expand(r, start, end)]
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if day not in rota.expanded:
        if len(rota.expanded) > 64:
            rota.expanded.clear()
        near = (day - timedelta(days=1), day + timedelta(days=3))
        rota.expanded[day] = [s for r in rota.recurring for s in expand(r, *near)]
    return rota.expanded[day]


def _person(s: Shift, people: Mapping[str, Responder]) -> Responder:
    if s.person_key and s.person_key in people:
        return people[s.person_key]
    return Responder(
        key=s.person_key or f"rota:{s.phones[0]}",
        name=s.name,
        tier=tier_of(s.region_code),
        region_code=s.region_code,
        phones=s.phones,
        roles=(s.role,),
    )


def tier_of(code: str) -> Tier:
    """The tier whose office a region is: 4-digit prefix city, 6 county, 9 township, 12 village."""
    n = len(regions.prefix(code))
    return {2: Tier.CITY, 4: Tier.CITY, 6: Tier.COUNTY, 9: Tier.TOWNSHIP}.get(n, Tier.VILLAGE)


# --- checks -----------------------------------------------------------------------------------


def overlaps(shifts: Sequence[Shift]) -> list[str]:
    """An error for each shift that starts before the previous one of the same role and
    region has ended."""
    problems = []
    last: dict[tuple[str, str], Shift] = {}
    for s in sorted(shifts, key=lambda s: (s.region_code, s.role, s.start, s.end)):
        before = last.get((s.region_code, s.role))
        if before is not None and s.start < before.end:
            place = before.where.rsplit(":", 1)[-1]
            label = f"line {place}" if place.isdigit() else place
            problems.append(
                f"{s.where}: {ROLE_ZH[s.role]}/{s.role} shift of {s.name} for {s.region_code} "
                f"overlaps {before.name}'s on {label}"
            )
        if before is None or s.end > before.end:
            last[(s.region_code, s.role)] = s
    return problems


def gaps(rota: DutyRota, start: datetime, end: datetime) -> list[str]:
    """Warnings for hours in [start, end) when a region that has shifts of a role has
    nobody in it (the region above covers them, if it can)."""
    zone = ZoneInfo(rota.zone)
    covered: dict[tuple[str, str], list[Shift]] = {}
    for s in occurrences(rota, start, end):
        covered.setdefault((s.region_code, s.role), []).append(s)
    warnings = []
    for (code, role), shifts in sorted(covered.items()):
        for a, b in _holes(shifts, start, end):
            warnings.append(
                f"{code} {ROLE_ZH[role]}/{role}: no one on duty from "
                f"{_local(a, zone)} to {_local(b, zone)} ({rota.zone})"
            )
    return warnings


def _holes(shifts: list[Shift], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    holes, reached = [], start
    for s in sorted(shifts, key=lambda s: s.start):
        if s.start > reached:
            holes.append((reached, min(s.start, end)))
        reached = max(reached, s.end)
    if reached < end:
        holes.append((reached, end))
    return holes


def _local(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def span(rota: DutyRota, now: datetime) -> tuple[datetime, datetime]:
    """The stretch a check looks at: the fixed shifts' whole span, and recurring shifts
    from ``now`` over the next two months."""
    starts = [s.start for s in rota.shifts] + ([now] if rota.recurring else [])
    ends = [s.end for s in rota.shifts] + ([now + CHECK_HORIZON] if rota.recurring else [])
    return (min(starts), max(ends)) if starts else (now, now)


# --- loading ----------------------------------------------------------------------------------


def load_rota(
    path: Path,
    people: Iterable[Responder] = (),
    zone: str = DEFAULT_ZONE,
    default_region: str = "CN",
    now: datetime | None = None,
) -> DutyRota:
    """Read and validate a rota (CSV/XLSX, or .ics); ConfigError lists every problem.

    ``people`` is the roster: a shift naming a key must name one of them, and a shift
    giving a name and phone of a roster person is attributed to that person. Recurring
    shifts are checked for overlaps from ``now`` over the next two months.
    """
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError([f"timezone: unknown time zone {zone!r}"]) from None
    roster = RosterIndex(list(people), default_region)
    if path.suffix.lower() in (".ics", ".ical", ".ifb"):
        from warnbot.rosters.rota_ics import read_ics

        shifts, recurring, problems = read_ics(path, roster, tz)
    else:
        from warnbot.rosters.rota_table import read_rows

        shifts, problems = read_rows(path, roster, tz)
        recurring = []
    rota = DutyRota(tuple(shifts), tuple(recurring), zone)
    if not problems:
        first, last = span(rota, now or datetime.now(UTC))
        problems = overlaps(occurrences(rota, first, last))
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))  # a recurring clash, once
    return rota


class RosterIndex:
    """Finds the person a rota row or event names: by roster key, or by name and phone
    (a roster person's phone makes the shift theirs)."""

    def __init__(self, people: list[Responder], default_region: str) -> None:
        self.by_key = {p.key: p for p in people}
        self.by_phone = {phone: p for p in people for phone in p.phones}
        self.default_region = default_region

    def person(
        self, key: str, name: str, phone: str, problems: list[str]
    ) -> tuple[str | None, str, tuple[str, ...]]:
        """(roster key or None, name, phones) of who a shift names."""
        if key:
            p = self.by_key.get(key)
            if p is None:
                problems.append(f"编号/key {key!r} is not in the roster")
                return key, name, ()
            return p.key, p.name, p.phones
        number = phones.e164(phone, self.default_region) if phone else None
        if not name or not phone:
            problems.append("a shift names a person by 编号/key, or by 姓名/name and 电话/phone")
        elif number is None:
            problems.append(f"phone {phone!r} is not a valid number")
        elif number in self.by_phone:
            p = self.by_phone[number]
            return p.key, p.name, p.phones
        return None, name, (number,) if number else ()


def role_of(value: str) -> str | None:
    folded = value.strip().casefold()
    return next((r for r, names in ROLES.items() if folded in names), None)


def region_of(value: str, problems: list[str]) -> str:
    if not regions.is_code(value):
        problems.append(f"行政区划代码/region_code {value!r} is not a 6, 9 or 12 digit code")
        return value
    return regions.canonical(value)
