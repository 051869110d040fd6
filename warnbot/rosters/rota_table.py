"""Duty rotas from a table file (CSV/XLSX): one shift a row.

Columns (Chinese or English headers): 日期/date, 开始时间/start, 结束时间/end —
a start and end may be full local datetimes ("2026-08-15 08:30", "2026/8/15",
"2026年8月15日 08:30") or times on the row's date, an end at or before its start
being the next morning — 行政区划代码/region_code, 岗位/role (值班员/带班领导),
and the person: 编号/key, or 姓名/name and 手机号码/phone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from warnbot.rosters.rota import RosterIndex, Shift, region_of, role_of
from warnbot.rosters.tablefile import Row, read_table, text

HEADERS = {
    "start": ("开始", "开始时间", "start"),
    "end": ("结束", "结束时间", "end"),
    "date": ("日期", "值班日期", "date"),
    "region_code": ("行政区划代码", "区划代码", "region_code", "region"),
    "role": ("岗位", "角色", "role"),
    "key": ("编号", "id", "key"),
    "name": ("姓名", "name"),
    "phone": ("手机号码", "电话", "phone"),
}
REQUIRED = ("start", "end", "region_code", "role")


def read_rows(path: Path, roster: RosterIndex, tz: tzinfo) -> tuple[list[Shift], list[str]]:
    """The shifts of a rota table and every problem with its rows."""
    shifts, problems = [], []
    for row in read_table(path, HEADERS, REQUIRED):
        shift, wrong = _shift(row, roster, tz)
        problems += [f"{row.where}: {m}" for m in wrong]
        if shift is not None:
            shifts.append(shift)
    return shifts, problems


def _shift(row: Row, roster: RosterIndex, tz: tzinfo) -> tuple[Shift | None, list[str]]:
    f, problems = row.fields, []
    role = role_of(text(f.get("role")))
    if role is None:
        problems.append(f"岗位/role {text(f.get('role'))!r} is not 值班员 or 带班领导")
    code = region_of(text(f.get("region_code")), problems)
    start, end = _times(f, tz, problems)
    key, name, numbers = roster.person(
        text(f.get("key")), text(f.get("name")), text(f.get("phone")), problems
    )
    if problems or role is None or start is None or end is None:
        return None, problems
    return Shift(code, role, start, end, name, key, numbers, row.where), []


_DATETIME = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]+(.+))?$")
_TIME = re.compile(r"^(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?$")


def _times(
    f: Mapping[str, Any], tz: tzinfo, problems: list[str]
) -> tuple[datetime | None, datetime | None]:
    """Start and end in UTC. A time without a date takes the row's 日期; an end at or
    before its start on that date is the next morning (a night shift)."""
    day = _date(f.get("date"), problems) if text(f.get("date")) else None
    if text(f.get("date")) and day is None:
        return None, None
    start = _moment(f.get("start"), day, "开始/start", problems)
    end = _moment(f.get("end"), day, "结束/end", problems) if start else None
    if start is None or end is None:
        return None, None
    if end <= start and _has_no_date(f.get("end")):
        end += timedelta(days=1)
    if end <= start:
        problems.append(f"结束/end {text(f.get('end'))!r} is not after 开始/start")
        return None, None
    return _utc(start, tz), _utc(end, tz)


def _has_no_date(value: Any) -> bool:
    return isinstance(value, time) or bool(_TIME.match(text(value)))


def _date(value: Any, problems: list[str]) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    m = _DATETIME.match(text(value))
    if m and not m.group(4):
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            pass
    problems.append(f"日期/date {text(value)!r} is not a date like 2026-07-01")
    return None


def _moment(value: Any, day: date | None, column: str, problems: list[str]) -> datetime | None:
    """A naive local datetime from a cell: a datetime, "2026-07-01 08:30", or a time
    ("08:30") on the row's date."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    clock = value if isinstance(value, time) else _clock(text(value))
    if clock is not None:
        if day is None:
            problems.append(f"{column} {text(value)!r} is a time without a 日期/date")
            return None
        return datetime.combine(day, clock.replace(tzinfo=None))
    m = _DATETIME.match(text(value))
    if m:
        try:
            when = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            at = _clock(m.group(4) or "00:00")
            if at is not None:
                return datetime.combine(when, at)
        except ValueError:
            pass
    problems.append(f"{column} {text(value)!r} is not a time like 2026-07-01 08:30")
    return None


def _clock(value: str) -> time | None:
    m = _TIME.match(value.strip())
    if not m:
        return None
    hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if hour == 24 and minute == 0 and second == 0:
        return None  # "24:00" is written as the next day's 00:00
    try:
        return time(hour, minute, second)
    except ValueError:
        return None


def _utc(local: datetime, tz: tzinfo) -> datetime:
    return local.replace(tzinfo=tz).astimezone(UTC)
