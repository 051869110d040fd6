"""CSV for spreadsheets: a cell that would start a formula is kept as text, nothing else
changes."""

from __future__ import annotations

import csv
import io

import pytest

from warnbot.csvcells import FORMULA_START, safe, table


@pytest.mark.parametrize("start", FORMULA_START)
def test_a_text_cell_starting_a_formula_is_quoted(start: str) -> None:
    assert safe(f"{start}1+1") == f"'{start}1+1"


@pytest.mark.parametrize(
    "value", ["王小川", "449901", "2026-08-15T06:15:00+00:00", "", 12, -3, None]
)
def test_other_cells_pass_unchanged(value: object) -> None:
    assert safe(value) == value


def test_a_table_quotes_header_and_rows_and_reads_back() -> None:
    text = table(["=name", "n"], [["=cmd|' /C calc'!A0", -1], ["村甲", 2]], lineterminator="\n")
    assert list(csv.reader(io.StringIO(text))) == [
        ["'=name", "n"],
        ["'=cmd|' /C calc'!A0", "-1"],
        ["村甲", "2"],
    ]
    assert "\r" not in text and table(["a"], []).endswith("\r\n")
