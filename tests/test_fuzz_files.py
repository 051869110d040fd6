"""Fuzz the spreadsheet and calendar readers: whatever an office uploads — a
workbook with odd cells, a damaged file, a calendar with strange events — is read
or refused with a ConfigError naming where; it never crashes."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warnbot import rosters, transfers
from warnbot.errors import ConfigError
from warnbot.rosters.rota import load_rota

HEADER = ["编号", "姓名", "层级", "行政区划代码", "手机号码", "角色", "语言", "上级编号"]
ROTA_HEADER = ["开始", "结束", "角色", "编号", "姓名", "电话", "行政区划代码"]
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text_cells = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)
cells = st.one_of(
    st.none(),
    text_cells,
    st.integers(-(10**12), 10**13),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2090, 1, 1)),
)
sheets = st.lists(st.lists(cells, max_size=9), max_size=8)


def _workbook(header: list[str], rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _located(e: ConfigError, path: Path) -> bool:
    return bool(e.problems) and all(str(path) in p or p.startswith("timezone") for p in e.problems)


def _read_or_refuse(suffix: str, data: bytes, read: Callable[[Path], object]) -> object:
    """What ``read`` makes of ``data`` saved as a file, or None when it refused it with
    a ConfigError naming the file (anything else escapes and fails the test)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return read(path)
        except ConfigError as e:
            assert _located(e, path), e.problems
            return None


@FUZZ
@given(sheets)
def test_any_roster_workbook_loads_or_names_its_bad_rows(rows: list[list[object]]) -> None:
    people = _read_or_refuse(".xlsx", _workbook(HEADER, rows), rosters.load)
    assert people is None or all(p.key and p.phones for p in people)  # type: ignore[attr-defined]


@FUZZ
@given(st.binary(max_size=3000))
def test_a_damaged_workbook_is_refused_with_its_name(junk: bytes) -> None:
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:  # a zip, as an .xlsx is, holding garbage
        z.writestr("xl/workbook.xml", junk)
    for data in (junk, zipped.getvalue()):
        _read_or_refuse(".xlsx", data, rosters.load)


@FUZZ
@given(st.text(max_size=400))
def test_any_yaml_roster_loads_or_is_refused_with_its_name(text: str) -> None:
    _read_or_refuse(".yaml", text.encode("utf-8", "surrogatepass"), rosters.load)


@FUZZ
@given(sheets)
def test_any_rota_workbook_loads_or_names_its_bad_rows(rows: list[list[object]]) -> None:
    _read_or_refuse(".xlsx", _workbook(ROTA_HEADER, rows), load_rota)


TRANSFER_HEADER = ["责任人编号", "户主", "人数", "联系电话", "转移路线", "安置点"]


@FUZZ
@given(sheets)
def test_any_transfer_list_workbook_loads_or_names_its_bad_rows(rows: list[list[object]]) -> None:
    _read_or_refuse(".xlsx", _workbook(TRANSFER_HEADER, rows), transfers.load)


EVENT_LINES = st.sampled_from(
    [
        "DTSTART:20260815T080000",
        "DTSTART;TZID=Asia/Shanghai:20260815T080000",
        "DTSTART;VALUE=DATE:20260815",
        "DTEND:20260815T200000",
        "DTEND:20260814T200000",
        "DURATION:PT12H",
        "DURATION:-PT1H",
        "RRULE:FREQ=DAILY;COUNT=3",
        "RRULE:FREQ=WEEKLY;BYDAY=MO,XX",
        "RRULE:FREQ=SECONDLY",
        "EXDATE:20260816T080000",
        "RECURRENCE-ID:20260816T080000",
        "SUMMARY:值班员 示例甲",
        "SUMMARY:带班领导",
        "SUMMARY:",
        "ATTENDEE;CN=示例乙:tel:+8617000000101",
        "ATTENDEE:mailto:nobody@example.invalid",
        "LOCATION:449901",
        "DESCRIPTION:行政区划代码 449901001",
        "UID:x",
    ]
)


@FUZZ
@given(st.lists(st.lists(EVENT_LINES, max_size=8), max_size=4), st.text(max_size=60))
def test_any_calendar_rota_loads_or_names_its_bad_events(
    events: list[list[str]], noise: str
) -> None:
    body = "".join(
        "BEGIN:VEVENT\r\n" + "".join(f"{x}\r\n" for x in e) + "END:VEVENT\r\n" for e in events
    )
    text = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//fuzz//\r\n{body}{noise}END:VCALENDAR\r\n"
    now = dt.datetime(2026, 8, 15, tzinfo=dt.UTC)
    _read_or_refuse(".ics", text.encode("utf-8", "surrogatepass"), lambda p: load_rota(p, now=now))


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes_as_a_calendar_are_refused_with_its_name(junk: bytes) -> None:
    _read_or_refuse(".ics", junk, load_rota)
