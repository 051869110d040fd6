"""Write the XLSX twin of a roster CSV, as an office's spreadsheet would hold it.

    python config/rosters/csv_to_xlsx.py config/rosters/demo_roster.csv

writes ``demo_roster.xlsx`` beside it: the table on a sheet 名册 (every cell text,
so phone numbers and codes keep their digits) and a sheet 填表说明 of notes, which
the reader skips because it has no header. The file is reproducible: its
timestamps are fixed.
"""

from __future__ import annotations

import csv
import sys
from datetime import datetime
from pathlib import Path

import openpyxl

NOTES = [
    ["填表说明 How to fill in"],
    ["层级: 市 / 县 / 乡镇 / 村"],
    ["行政区划代码: 6 位（县及以上）, 9 位（乡镇）, 12 位（村）"],
    ["手机号码: 多个号码用 ； 或 、 分隔，第一个为首选"],
    ["上级编号: 上一层级责任人的编号"],
]


def convert(source: Path) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "名册"
    with source.open(encoding="utf-8-sig", newline="") as f:
        for row in csv.reader(f):
            sheet.append(row)
    notes = book.create_sheet("填表说明")
    for line in NOTES:
        notes.append(line)
    fixed = datetime(2026, 8, 1)
    book.properties.created = book.properties.modified = fixed
    target = source.with_suffix(".xlsx")
    book.save(target)
    return target


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(convert(Path(name)))
