"""Duty rotas from iCalendar: each VEVENT is a shift, RRULE makes it recur.

An event names its shift the way an office calendar would:

- ``SUMMARY``: the person, by roster key or name, optionally after the role —
  ``带班领导 林晓晴(示例)`` or ``值班员：D01``;
- ``CATEGORIES``: the role, when the summary does not start with it;
- ``LOCATION`` (or ``X-WARNBOT-REGION``): the region's division code;
- ``ATTENDEE;CN=…:tel:+86…``: the phone of a person not in the roster.

Times with a zone are taken as written; floating times and all-day dates are
in the rota's zone (Asia/Shanghai by default). A problem is reported at the
line of the event's ``BEGIN:VEVENT``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

import icalendar
import recurring_ical_events  # type: ignore[import-untyped]

from warnbot.rosters.rota import Recurring, RosterIndex, Shift, region_of, role_of
from warnbot.rosters.tablefile import check_size

_ROLE_PREFIX = re.compile(r"^\s*(\S+?)\s*[:：\s]\s*(.+)$")


def read_ics(
    path: Path, roster: RosterIndex, tz: tzinfo
) -> tuple[list[Shift], list[Recurring], list[str]]:
    """Fixed shifts, recurring shifts and problems of an iCalendar rota."""
    try:
        check_size(path)
        content = path.read_bytes()
        calendar = icalendar.Calendar.from_ical(content)
    except OSError as e:
        return [], [], [f"{path}: cannot read: {e.strerror}"]
    except ValueError as e:
        return [], [], [f"{path}: not an iCalendar file: {e}"]
    lines = _event_lines(content)
    shifts, recurring, problems = [], [], []
    for n, event in enumerate(calendar.walk("VEVENT")):
        where = f"{path}:{lines[n] if n < len(lines) else 1}"
        wrong: list[str] = []
        shift = _shift(event, where, roster, tz, wrong)
        problems += [f"{where}: {m}" for m in wrong]
        if shift is None:
            continue
        if "RRULE" in event or "RDATE" in event:
            recurring.append(Recurring(shift, _series(calendar, event)))
        elif "RECURRENCE-ID" not in event:
            shifts.append(shift)
    return shifts, recurring, problems


def expand(r: Recurring, start: datetime, end: datetime) -> Iterator[Shift]:
    """The occurrences of a recurring shift that overlap [start, end)."""
    for event in recurring_ical_events.of(r.calendar).between(start, end):
        begin, finish = _span(event, UTC)
        if begin < end and finish > start:
            yield replace(r.template, start=begin, end=finish)


def _event_lines(content: bytes) -> list[int]:
    """The line of each ``BEGIN:VEVENT``, in file order (the order ``walk`` yields)."""
    text = content.decode("utf-8", errors="replace")
    return [
        i for i, line in enumerate(text.splitlines(), start=1) if line.strip() == "BEGIN:VEVENT"
    ]


def _shift(
    event: Any, where: str, roster: RosterIndex, tz: tzinfo, problems: list[str]
) -> Shift | None:
    summary = str(event.get("SUMMARY", "")).strip()
    role, who = _role_and_person(summary, event)
    if role is None:
        problems.append(
            f"no role: start SUMMARY with 值班员 or 带班领导, or set CATEGORIES ({summary!r})"
        )
    location = str(event.get("X-WARNBOT-REGION") or event.get("LOCATION") or "").strip()
    code = region_of(location, problems)
    key, name, numbers = _who(who, event, roster, problems)
    if not _times_readable(event, problems):
        return None
    _aware(event, tz)
    try:
        start, end = _span(event, UTC)
    except (KeyError, ValueError, TypeError):
        problems.append("DTSTART/DTEND missing or unreadable")
        return None
    if end <= start:
        problems.append("DTEND is not after DTSTART")
    if problems or role is None:
        return None
    return Shift(code, role, start, end, name, key, numbers, where)


def _who(
    who: str, event: Any, roster: RosterIndex, problems: list[str]
) -> tuple[str | None, str, tuple[str, ...]]:
    """The person a SUMMARY names by roster key, else the ``tel:`` attendee."""
    if who in roster.by_key:
        return roster.person(who, "", "", problems)
    name, phone = _attendee(event)
    if phone:
        return roster.person("", name or who, phone, problems)
    problems.append(f"{who!r} is not a roster key, and no ATTENDEE;CN=name:tel:phone is given")
    return None, who, ()


def _role_and_person(summary: str, event: Any) -> tuple[str | None, str]:
    m = _ROLE_PREFIX.match(summary)
    if m and role_of(m.group(1)):
        return role_of(m.group(1)), m.group(2).strip()
    categories = event.get("CATEGORIES")
    names = [str(c) for c in getattr(categories, "cats", [])] if categories else []
    role = next((r for r in map(role_of, names) if r), None)
    return role, summary


def _attendee(event: Any) -> tuple[str, str]:
    """(CN, phone) of the first ``tel:`` attendee, if any."""
    attendees = event.get("ATTENDEE") or []
    for a in attendees if isinstance(attendees, list) else [attendees]:
        if str(a).lower().startswith("tel:"):
            return str(a.params.get("CN", "")), str(a)[4:]
    return "", ""


_TIMES = ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID")


def _times_readable(event: Any, problems: list[str]) -> bool:
    """Each time property at most once and readable; else say which is not."""
    for name in _TIMES:
        if name not in event:
            continue
        try:
            value = event.decoded(name)
        except (ValueError, TypeError, KeyError):
            problems.append(f"{name} is unreadable")
            return False
        if isinstance(value, list):
            problems.append(f"{name} is given more than once")
            return False
    return True


def _aware(event: Any, tz: tzinfo) -> None:
    """Floating times and all-day dates become times in the rota's zone, so the
    expansion compares them with UTC correctly."""
    for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
        if name in event:
            value = event.decoded(name)
            if not isinstance(value, datetime) or value.tzinfo is None:
                event.pop(name)
                event.add(name, _local(value, tz))


def _local(value: date | datetime, tz: tzinfo) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    return value.replace(tzinfo=tz)


def _span(event: Any, tz: tzinfo) -> tuple[datetime, datetime]:
    start = event.decoded("DTSTART")
    if "DTEND" in event:
        end = event.decoded("DTEND")
    else:
        end = start + (event.decoded("DURATION") if "DURATION" in event else timedelta(days=1))
    return _local_if_naive(start, tz), _local_if_naive(end, tz)


def _local_if_naive(value: date | datetime, tz: tzinfo) -> datetime:
    aware = _local(value, tz) if not isinstance(value, datetime) or value.tzinfo is None else value
    return aware.astimezone(UTC)


def _series(calendar: Any, event: Any) -> Any:
    """A calendar holding only ``event``'s series (the event and its overrides), with
    the VTIMEZONEs the file defines."""
    uid = str(event.get("UID", ""))
    series = icalendar.Calendar()
    for component in calendar.subcomponents:
        same = component is event or (uid and str(component.get("UID", "")) == uid)
        if component.name == "VTIMEZONE" or (component.name == "VEVENT" and same):
            series.add_component(component)
    return series
