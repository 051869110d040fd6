"""Tests for warnbot.rosters.tablefile: CSV, XLSX and YAML tables as rows with their places."""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from warnbot.errors import ConfigError
from warnbot.rosters import tablefile
from warnbot.rosters.tablefile import read_table, text

COLUMNS = {"phone": ("手机号码", "phone"), "region_code": ("行政区划代码", "region_code")}
REQUIRED = ("phone", "region_code")


def workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    """An .xlsx with the given sheets, rows as written."""
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def problem(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        read_table(path, COLUMNS, REQUIRED)
    (only,) = caught.value.problems
    return only


def test_csv_rows_carry_their_line_and_canonical_names(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("手机号码,备注,行政区划代码\n13800138001,x,449901\n\n13800138002,,449901001\n")
    rows = read_table(path, COLUMNS, REQUIRED)
    assert [(r.where, r.fields) for r in rows] == [
        (f"{path}:2", {"phone": "13800138001", "region_code": "449901"}),
        (f"{path}:4", {"phone": "13800138002", "region_code": "449901001"}),
    ]


def test_a_title_row_above_the_header_is_skipped_and_lines_stay_true(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("示例县居民名单（示例）,\nphone,region_code\n13800138001,449901\n")
    (row,) = read_table(path, COLUMNS, REQUIRED)
    assert row.where == f"{path}:3"


def test_a_missing_column_is_reported_at_the_header_line(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("标题\nphone,备注\n13800138001,\n")
    assert problem(path) == f"{path}:2: missing column(s) 行政区划代码/region_code"


def test_xlsx_rows_are_placed_by_sheet_and_row(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "a.xlsx",
        {
            "填表说明": [["请按模板填写"], ["层级: 市/县/乡镇/村"]],
            "一组": [["手机号码", "行政区划代码"], [13800138001, 449901], [None, None]],
            "二组": [["名单"], ["phone", "region_code"], ["13800138002", "449901001"]],
        },
    )
    rows = read_table(path, COLUMNS, REQUIRED)
    assert [(r.where, r.fields) for r in rows] == [
        (f"{path}:一组!2", {"phone": "13800138001", "region_code": "449901"}),
        (f"{path}:二组!3", {"phone": "13800138002", "region_code": "449901001"}),
    ]
    assert rows[1].label == "二组!3"


def test_a_workbook_without_any_table_names_the_missing_columns(tmp_path: Path) -> None:
    path = workbook(tmp_path / "a.xlsx", {"Sheet1": [["姓名"], ["张三"]]})
    assert (
        problem(path)
        == f"{path}:Sheet1!1: missing column(s) 手机号码/phone, 行政区划代码/region_code"
    )


def test_a_sheet_with_half_a_header_is_reported_at_its_row(tmp_path: Path) -> None:
    path = workbook(tmp_path / "a.xlsx", {"名单": [["说明"], ["手机号码", "备注"]]})
    assert problem(path) == f"{path}:名单!2: missing column(s) 行政区划代码/region_code"


def test_a_file_that_is_not_a_workbook_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    path.write_text("phone,region\n")
    assert problem(path).startswith(f"{path}: cannot read workbook")


def test_dates_in_a_workbook_stay_dates(tmp_path: Path) -> None:
    start = datetime(2026, 8, 15, 8, 30)
    header = ["phone", "region_code", "start"]
    path = workbook(tmp_path / "a.xlsx", {"S": [header, ["1", "2", start]]})
    (row,) = read_table(path, {**COLUMNS, "start": ("start",)}, REQUIRED)
    assert row.fields["start"] == start


def test_yaml_rows_carry_the_line_of_each_entry(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(
        "# list\n- phone: '13800138001'\n  region_code: '449901'\n"
        "- {手机号码: 1, 行政区划代码: 2}\n"
    )
    rows = read_table(path, COLUMNS, REQUIRED)
    assert [r.where for r in rows] == [f"{path}:2", f"{path}:4"]
    assert rows[1].fields == {"phone": 1, "region_code": 2}


@pytest.mark.parametrize(
    ("cell", "written"),
    [(13800138001, "13800138001"), (449901.0, "449901"), (None, ""), (" a ", "a")],
)
def test_cells_typed_as_numbers_read_as_their_digits(cell: object, written: str) -> None:
    assert text(cell) == written


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tablefile, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "audience.csv"
    path.write_text("手机号码,行政区划代码\n" + "+8613800138000,449901\n" * 100, encoding="utf-8")
    size = path.stat().st_size
    with pytest.raises(ConfigError) as e:
        read_table(path, COLUMNS, REQUIRED)
    assert e.value.problems == [f"{path}: {size} bytes is over the 1000 bytes limit"]


def test_a_workbook_that_unpacks_too_large_is_refused_as_a_zip_bomb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * 3 * 2**20)  # 3 MB of zeros, ~3 KB zipped
    assert path.stat().st_size < 64 * 1024
    monkeypatch.setattr(tablefile, "MAX_UNPACKED_BYTES", 2**20)
    with pytest.raises(ConfigError, match=r"the workbook unpacks to 3\.0 MB, over 1\.0 MB"):
        read_table(path, COLUMNS, REQUIRED)
