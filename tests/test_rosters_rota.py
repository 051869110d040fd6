"""Tests for warnbot.rosters.rota: duty rotas 值班表 from CSV, XLSX and iCalendar, and lookups.

Times in the files are Asia/Shanghai local times (UTC+8); every lookup is in UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_rosters_tablefile import workbook
from warnbot.errors import ConfigError
from warnbot.model import Tier
from warnbot.rosters import load
from warnbot.rosters.rota import (
    DUTY_OFFICER,
    LEADER_ON_SHIFT,
    DutyRota,
    duty_officers_at,
    gaps,
    load_rota,
    on_duty,
    region_chain,
    span,
)

ROSTERS = ROOT / "config" / "rosters"
PEOPLE = load(ROSTERS / "demo_roster.csv")
BY_KEY = {p.key: p for p in PEOPLE}
NOW = datetime(2026, 8, 1, tzinfo=UTC)
ZH = "日期,开始时间,结束时间,行政区划代码,岗位,编号,姓名,手机号码"
EN = "start,end,region_code,role,key,name,phone"


def utc(text: str) -> datetime:
    """An instant given as Asia/Shanghai wall time ("2026-08-15 08:30"), in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC) - timedelta(hours=8)


def rota_file(tmp_path: Path, header: str, *rows: str, name: str = "rota.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_rota(path, PEOPLE, now=NOW)
    return caught.value.problems


def who(rota: DutyRota, code: str, when: str, role: str = DUTY_OFFICER) -> list[str]:
    return [s.name for s in on_duty(rota, code, utc(when), role)]


DEMO_ROTA = load_rota(ROSTERS / "demo_rota.csv", PEOPLE, now=NOW)


# --- lookups ----------------------------------------------------------------------------------


def test_the_duty_officer_is_found_inside_a_local_shift() -> None:
    assert who(DEMO_ROTA, "449900", "2026-08-15 12:00") == ["周值班(示例)"]


def test_a_shift_starts_at_its_first_instant_and_ends_before_its_last() -> None:
    # 08:30 local on the 16th is 00:30 UTC: D01's shift ends, 何守夜's begins.
    assert who(DEMO_ROTA, "449900", "2026-08-16 08:29:59") == ["周值班(示例)"]
    assert who(DEMO_ROTA, "449900", "2026-08-16 08:30") == ["何守夜(示例)"]
    assert on_duty(DEMO_ROTA, "449900", datetime(2026, 8, 16, 0, 30, tzinfo=UTC))[0].name == (
        "何守夜(示例)"
    )


def test_a_night_shift_written_as_20_30_to_08_30_runs_into_the_next_morning() -> None:
    assert who(DEMO_ROTA, "449901", "2026-08-15 20:29") == ["黄海涛(示例)"]
    assert who(DEMO_ROTA, "449901", "2026-08-15 23:00") == ["陈立新(示例)"]
    assert who(DEMO_ROTA, "449901", "2026-08-16 08:29") == ["陈立新(示例)"]
    (night,) = on_duty(DEMO_ROTA, "449901", utc("2026-08-16 03:00"))
    assert (night.start, night.end) == (utc("2026-08-15 20:30"), utc("2026-08-16 08:30"))
    assert night.start.tzinfo is UTC


def test_a_village_without_a_shift_is_covered_by_its_township_then_its_county() -> None:
    assert who(DEMO_ROTA, "449901001001", "2026-08-15 12:00") == ["吴静安(示例)"]
    assert who(DEMO_ROTA, "449901002001", "2026-08-15 12:00") == ["黄海涛(示例)"]
    # on the 16th neither township nor county has a shift: the city's duty officer
    assert who(DEMO_ROTA, "449901001001", "2026-08-16 12:00") == ["何守夜(示例)"]


def test_nobody_is_on_duty_outside_every_shift() -> None:
    assert who(DEMO_ROTA, "449901001001", "2026-09-30 12:00") == []
    assert who(DEMO_ROTA, "450000", "2026-08-15 12:00") == []


def test_the_leader_on_shift_is_looked_up_by_role() -> None:
    assert who(DEMO_ROTA, "449901001", "2026-08-15 12:00", LEADER_ON_SHIFT) == ["林晓晴(示例)"]


def test_the_region_chain_goes_up_to_the_province() -> None:
    assert region_chain("449901001001") == [
        "449901001001",
        "449901001",
        "449901",
        "449900",
        "440000",
    ]
    assert region_chain("449901000000") == ["449901", "449900", "440000"]


def test_duty_officers_of_an_incident_region_are_roster_persons_or_made_from_the_rota() -> None:
    assert duty_officers_at(DEMO_ROTA, "449901", utc("2026-08-15 12:00"), BY_KEY) == [BY_KEY["X02"]]
    (stand_in,) = duty_officers_at(DEMO_ROTA, "449901", utc("2026-08-16 12:00"), BY_KEY)
    assert (stand_in.key, stand_in.name, stand_in.phones) == (
        "rota:+8617000000910", "何守夜(示例)", ("+8617000000910",),
    )  # fmt: skip
    assert (stand_in.tier, stand_in.region_code, stand_in.roles) == (
        Tier.CITY, "449900", (DUTY_OFFICER,),
    )  # fmt: skip


def test_a_person_named_with_a_roster_phone_is_that_roster_person(tmp_path: Path) -> None:
    path = rota_file(tmp_path, ZH, "2026-08-15,08:30,08:30,449901,值班员,,黄海涛,138 0013 8001")
    path.write_text(path.read_text().replace("138 0013 8001", "+86 170 0000 0202"))
    rota = load_rota(path, PEOPLE, now=NOW)
    assert rota.shifts[0].person_key == "X02"


# --- formats --------------------------------------------------------------------------------


def test_english_headers_with_full_local_datetimes_load_the_same_shift(tmp_path: Path) -> None:
    zh = load_rota(rota_file(tmp_path, ZH, "2026-08-15,08:30,20:30,449901,值班员,X02,,"), PEOPLE)
    en = load_rota(
        rota_file(tmp_path, EN, "2026/8/15 08:30,2026-08-15 20:30,449901,duty_officer,X02,,",
                  name="en.csv"),
        PEOPLE,
    )  # fmt: skip
    assert [(s.start, s.end, s.person_key) for s in zh.shifts] == [
        (utc("2026-08-15 08:30"), utc("2026-08-15 20:30"), "X02")
    ]
    assert [(s.start, s.end, s.person_key) for s in en.shifts] == [
        (s.start, s.end, s.person_key) for s in zh.shifts
    ]


def test_an_xlsx_rota_with_date_and_time_cells_loads(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "rota.xlsx",
        {
            "八月": [
                ["示例县值班表"],
                ["日期", "开始时间", "结束时间", "行政区划代码", "岗位", "编号"],
                [date(2026, 8, 15), time(8, 30), time(8, 30), "449901", "值班员", "X01"],
                [None, datetime(2026, 8, 16, 8, 30), datetime(2026, 8, 17, 8, 30), "449901",
                 "带班领导", "X02"],
            ]
        },
    )  # fmt: skip
    rota = load_rota(path, PEOPLE, now=NOW)
    assert [(s.role, s.start, s.end, s.where) for s in rota.shifts] == [
        (DUTY_OFFICER, utc("2026-08-15 08:30"), utc("2026-08-16 08:30"), f"{path}:八月!3"),
        (LEADER_ON_SHIFT, utc("2026-08-16 08:30"), utc("2026-08-17 08:30"), f"{path}:八月!4"),
    ]


def test_times_in_a_file_are_read_in_the_configured_zone(tmp_path: Path) -> None:
    path = rota_file(tmp_path, ZH, "2026-08-15,08:30,20:30,449901,值班员,X02,,")
    rota = load_rota(path, PEOPLE, zone="Europe/London", now=NOW)
    assert rota.shifts[0].start == datetime(2026, 8, 15, 7, 30, tzinfo=UTC)  # BST is UTC+1


def test_an_unknown_time_zone_is_a_configuration_error(tmp_path: Path) -> None:
    path = rota_file(tmp_path, ZH, "2026-08-15,08:30,20:30,449901,值班员,X02,,")
    with pytest.raises(ConfigError) as caught:
        load_rota(path, PEOPLE, zone="Mars/Olympus")
    assert caught.value.problems == ["timezone: unknown time zone 'Mars/Olympus'"]


# --- every bad row ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2026-08-15,08:30,20:30,449901,司机,X02,,", "岗位/role '司机' is not 值班员 or 带班领导"),
        ("2026-08-15,08:30,20:30,44990,值班员,X02,,",
         "行政区划代码/region_code '44990' is not a 6, 9 or 12 digit code"),
        ("2026-08-15,8点半,20:30,449901,值班员,X02,,",
         "开始/start '8点半' is not a time like 2026-07-01 08:30"),
        ("2026-02-30,08:30,20:30,449901,值班员,X02,,",
         "日期/date '2026-02-30' is not a date like 2026-07-01"),
        (",08:30,20:30,449901,值班员,X02,,", "开始/start '08:30' is a time without a 日期/date"),
        ("2026-08-15,2026-08-15 20:30,2026-08-15 08:30,449901,值班员,X02,,",
         "结束/end '2026-08-15 08:30' is not after 开始/start"),
        ("2026-08-15,08:30,20:30,449901,值班员,X99,,", "编号/key 'X99' is not in the roster"),
        ("2026-08-15,08:30,20:30,449901,值班员,,何守夜,",
         "a shift names a person by 编号/key, or by 姓名/name and 电话/phone"),
        ("2026-08-15,08:30,20:30,449901,值班员,,何守夜,12345",
         "phone '12345' is not a valid number"),
    ],
)  # fmt: skip
def test_a_bad_row_is_reported_at_its_line(tmp_path: Path, row: str, message: str) -> None:
    path = rota_file(tmp_path, ZH, "2026-08-15,08:30,08:30,449900,值班员,D01,,", row)
    assert problems(path) == [f"{path}:3: {message}"]


def test_overlapping_shifts_of_one_role_in_one_region_are_errors(tmp_path: Path) -> None:
    path = rota_file(
        tmp_path,
        ZH,
        "2026-08-15,08:30,20:30,449901,值班员,X02,,",  # 2
        "2026-08-15,20:30,08:30,449901,值班员,X01,,",  # 3: touches, does not overlap
        "2026-08-16,08:00,20:30,449901,值班员,T01,,",  # 4: overlaps X01's night
        "2026-08-15,12:00,13:00,449901,带班领导,C01,,",  # 5: another role: fine
        "2026-08-15,12:00,13:00,449901001,值班员,T01,,",  # 6: another region: fine
    )
    assert problems(path) == [
        f"{path}:4: 值班员/duty_officer shift of 吴静安(示例) for 449901 "
        "overlaps 陈立新(示例)'s on line 3"
    ]


def test_a_rota_with_errors_is_rejected_whole_with_every_problem(tmp_path: Path) -> None:
    path = rota_file(
        tmp_path,
        ZH,
        "2026-08-15,08:30,20:30,449901,值班员,X02,,",
        "2026-08-15,08:30,20:30,449901,巡逻,X02,,",
        "2026-08-15,08:30,20:30,449901,值班员,X77,,",
    )
    assert [p.split(": ", 1)[0] for p in problems(path)] == [f"{path}:3", f"{path}:4"]


def test_gaps_are_warnings_naming_the_region_role_and_local_hours(tmp_path: Path) -> None:
    path = rota_file(
        tmp_path,
        ZH,
        "2026-08-15,08:30,20:30,449901,值班员,X02,,",
        "2026-08-16,08:30,20:30,449901,值班员,X01,,",
    )
    rota = load_rota(path, PEOPLE, now=NOW)
    assert gaps(rota, *span(rota, NOW)) == [
        "449901 值班员/duty_officer: no one on duty from 2026-08-15 20:30 to 2026-08-16 08:30 "
        "(Asia/Shanghai)"
    ]


# --- iCalendar --------------------------------------------------------------------------------

ICS_ROTA = load_rota(ROSTERS / "demo_rota.ics", PEOPLE, now=NOW)


def test_a_daily_rrule_shift_is_found_on_any_day() -> None:
    for day in ("2026-08-01", "2026-08-20", "2027-01-31"):
        assert who(ICS_ROTA, "449900", f"{day} 12:00") == ["周值班(示例)"]
        assert who(ICS_ROTA, "449900", f"{day} 12:00", LEADER_ON_SHIFT) == ["林晓晴(示例)"]
    assert who(ICS_ROTA, "449900", "2026-08-01 08:29") == []  # before the first shift


def test_every_other_day_rrules_alternate_at_the_shift_change() -> None:
    assert who(ICS_ROTA, "449901", "2026-08-01 12:00") == ["陈立新(示例)"]
    assert who(ICS_ROTA, "449901", "2026-08-02 08:29") == ["陈立新(示例)"]
    assert who(ICS_ROTA, "449901", "2026-08-02 08:30") == ["何守夜(示例)"]
    assert who(ICS_ROTA, "449901", "2026-08-03 08:30") == ["陈立新(示例)"]
    (shift,) = on_duty(ICS_ROTA, "449901", utc("2026-08-11 02:00"))
    assert (shift.start, shift.end) == (utc("2026-08-10 08:30"), utc("2026-08-11 08:30"))


def test_an_ics_attendee_phone_makes_a_person_outside_the_roster() -> None:
    (person,) = duty_officers_at(ICS_ROTA, "449901001", utc("2026-08-02 12:00"), BY_KEY)
    assert (person.name, person.phones) == ("何守夜(示例)", ("+8617000000910",))


def ics(tmp_path: Path, *events: str) -> Path:
    path = tmp_path / "rota.ics"
    body = "".join(f"BEGIN:VEVENT\nUID:e{n}\nDTSTAMP:20260801T000000Z\n{e}END:VEVENT\n"
                   for n, e in enumerate(events))  # fmt: skip
    path.write_text(f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//t\n{body}END:VCALENDAR\n")
    return path


def test_floating_and_all_day_ics_times_are_in_the_rota_zone(tmp_path: Path) -> None:
    path = ics(
        tmp_path,
        "DTSTART:20260815T083000\nDTEND:20260815T203000\nSUMMARY:值班员 X02\nLOCATION:449901\n",
        "DTSTART;VALUE=DATE:20260816\nDTEND;VALUE=DATE:20260817\nSUMMARY:值班员 X01\n"
        "LOCATION:449901\n",
        "DTSTART:20260817T003000Z\nDTEND:20260817T123000Z\nSUMMARY:值班员 T01\nLOCATION:449901\n",
    )
    rota = load_rota(path, PEOPLE, now=NOW)
    assert [(s.person_key, s.start, s.end) for s in rota.shifts] == [
        ("X02", utc("2026-08-15 08:30"), utc("2026-08-15 20:30")),
        ("X01", utc("2026-08-16 00:00"), utc("2026-08-17 00:00")),
        ("T01", utc("2026-08-17 08:30"), utc("2026-08-17 20:30")),
    ]


def test_ics_problems_are_reported_at_the_line_of_their_event(tmp_path: Path) -> None:
    path = ics(
        tmp_path,
        "DTSTART:20260815T083000\nDTEND:20260815T203000\nSUMMARY:值班员 X02\nLOCATION:449901\n",
        "DTSTART:20260815T083000\nDTEND:20260815T203000\nSUMMARY:巡逻 X02\nLOCATION:449901\n",
        "DTSTART:20260816T083000\nDTEND:20260816T203000\nSUMMARY:值班员 某人\nLOCATION:4499\n",
    )
    assert problems(path) == [
        f"{path}:12: no role: start SUMMARY with 值班员 or 带班领导, or set CATEGORIES "
        "('巡逻 X02')",
        f"{path}:12: '巡逻 X02' is not a roster key, and no ATTENDEE;CN=name:tel:phone is given",
        f"{path}:20: 行政区划代码/region_code '4499' is not a 6, 9 or 12 digit code",
        f"{path}:20: '某人' is not a roster key, and no ATTENDEE;CN=name:tel:phone is given",
    ]


def test_recurring_ics_shifts_that_collide_are_an_error_once(tmp_path: Path) -> None:
    path = ics(
        tmp_path,
        "DTSTART;TZID=Asia/Shanghai:20260801T083000\nDTEND;TZID=Asia/Shanghai:20260802T083000\n"
        "RRULE:FREQ=DAILY\nSUMMARY:值班员 X01\nLOCATION:449901\n",
        "DTSTART;TZID=Asia/Shanghai:20260910T200000\nDTEND;TZID=Asia/Shanghai:20260910T230000\n"
        "SUMMARY:值班员 X02\nLOCATION:449901\n",
    )
    assert problems(path) == [
        f"{path}:13: 值班员/duty_officer shift of 黄海涛(示例) for 449901 "
        "overlaps 陈立新(示例)'s on line 4"
    ]


def test_an_event_with_two_starts_is_reported_not_a_crash(tmp_path: Path) -> None:
    path = ics(
        tmp_path,
        "DTSTART:20260815T083000\nDTSTART:20260815T093000\nDTEND:20260815T203000\n"
        "SUMMARY:值班员 X02\nLOCATION:449901\n",
    )
    assert problems(path) == [f"{path}:4: DTSTART is given more than once"]


def test_a_file_that_is_not_icalendar_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "rota.ics"
    path.write_text("hello\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}: not an iCalendar file")
