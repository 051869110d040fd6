"""Table files: the CSV, XLSX and YAML an office keeps its lists in, as rows of fields.

Rosters, duty rotas, public audiences and transfer lists all arrive as tables an
office fills in by hand, so they share one reader. Each row comes back with its
canonical field names (headers are matched against Chinese or English aliases,
in any case) and its place in the file, so every problem can be reported as
``FILE:LINE: what is wrong`` — or ``FILE:SHEET!ROW: …`` for a workbook — where
the person who typed it will look.

The header is the first row that names a required column, within the first
few rows: spreadsheets often carry a title row ("示例县防汛责任人名册") above it.
Blank rows are skipped but keep later line numbers right.

A file over ``MAX_FILE_BYTES`` (or a workbook that unpacks to more than
``MAX_UNPACKED_BYTES``: a zip bomb) is refused before it is parsed: a
300,000-number audience is about 6 MB as CSV, so the limits leave room for any
real list and none for a file that would exhaust the daemon's memory.
"""

from __future__ import annotations

import csv
import io
import itertools
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import yaml

from warnbot.errors import ConfigError

Columns = Mapping[str, Sequence[str]]  # canonical name → header aliases, Chinese first
HEADER_SEARCH_ROWS = 10  # title rows above the header that are tolerated
XLSX_SUFFIXES = (".xlsx", ".xlsm")
YAML_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 64 * 2**20
MAX_UNPACKED_BYTES = 512 * 2**20


@dataclass(slots=True)  # not frozen: 300,000 frozen inits cost a second
class Row:
    """One row of a table file: where it is and its fields by canonical name."""

    path: Path
    place: str  # "7" for a line of a text file, "名册!7" for a sheet's row
    fields: dict[str, Any]

    @property
    def where(self) -> str:
        """``FILE:LINE`` or ``FILE:SHEET!ROW``, the prefix of every problem in this row."""
        return f"{self.path}:{self.place}"

    @property
    def label(self) -> str:
        """How another message points at this row: ``line 7`` or ``名册!7``."""
        return f"line {self.place}" if self.place.isdigit() else self.place


def read_table(path: Path, columns: Columns, required: Sequence[str]) -> list[Row]:
    """Every non-blank row of ``path`` (CSV, XLSX or YAML, by suffix).

    Raises ConfigError when the file cannot be read or a required column is missing.
    """
    return list(iter_table(path, columns, required))


def iter_table(path: Path, columns: Columns, required: Sequence[str]) -> Iterator[Row]:
    """Like ``read_table``, but streams rows: a 300,000-number audience stays small."""
    check_size(path)
    aliases = _aliases(columns)
    suffix = path.suffix.lower()
    if suffix in XLSX_SUFFIXES:
        return _xlsx_rows(path, columns, aliases, required)
    if suffix in YAML_SUFFIXES:
        return _yaml_rows(path, aliases)
    return _csv_rows(path, columns, aliases, required)


def check_size(path: Path) -> None:
    """ConfigError when ``path`` is too large to read safely (see the module's notes)."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from None
    if size > MAX_FILE_BYTES:
        raise ConfigError([f"{path}: {_mb(size)} is over the {_mb(MAX_FILE_BYTES)} limit"])
    if path.suffix.lower() in XLSX_SUFFIXES and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            unpacked = sum(i.file_size for i in z.infolist())
        if unpacked > MAX_UNPACKED_BYTES:
            limit = _mb(MAX_UNPACKED_BYTES)
            raise ConfigError([f"{path}: the workbook unpacks to {_mb(unpacked)}, over {limit}"])


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n} bytes"


def text(value: Any) -> str:
    """A cell as text: numbers typed into a spreadsheet (13800138001, 449901.0) lose
    the float's ``.0``; None is empty."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _aliases(columns: Columns) -> dict[str, str]:
    return {a.strip().casefold(): name for name, names in columns.items() for a in names}


def _canonical(header: Iterable[Any], aliases: Mapping[str, str]) -> list[str | None]:
    return [aliases.get(text(h).casefold()) for h in header]


def _missing(names: Sequence[str | None], columns: Columns, required: Sequence[str]) -> list[str]:
    return [_named(n, columns) for n in required if n not in names]


def _named(name: str, columns: Columns) -> str:
    """A column as the person filling in the file knows it: ``手机号码/phone``."""
    return f"{columns[name][0]}/{name}"


# --- CSV --------------------------------------------------------------------------------------


def _csv_rows(
    path: Path, columns: Columns, aliases: Mapping[str, str], required: Sequence[str]
) -> Iterator[Row]:
    lines = _csv_lines(_decode(path))
    head = list(itertools.islice(lines, HEADER_SEARCH_ROWS))
    line, names = _header(path, head, columns, aliases, required, str)
    rest = itertools.chain([r for r in head if r[0] > line], lines)
    return _csv_fields(path, names, rest)


def _decode(path: Path) -> str:
    """UTF-8 (with or without the BOM Excel writes), else GB18030: a Chinese Excel's
    "CSV" is saved in the ANSI code page, GBK, which GB18030 contains."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ConfigError([f"{path}: cannot read: neither UTF-8 nor GBK text"])


def _csv_lines(content: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(content))
    while True:
        # csv's line_num is the LAST line of a record (a quoted field may span lines);
        # a row is reported at its first line, the one a spreadsheet user looks for.
        first_line = reader.line_num + 1
        values = next(reader, None)
        if values is None:
            return
        yield first_line, values


def _csv_fields(
    path: Path, names: list[str | None], lines: Iterable[tuple[int, list[str]]]
) -> Iterator[Row]:
    wanted = [(i, n) for i, n in enumerate(names) if n is not None]
    for line, values in lines:
        fields = {n: values[i].strip() for i, n in wanted if i < len(values)}
        if any(fields.values()):
            yield Row(path, str(line), fields)


def _header(
    path: Path,
    head: Sequence[tuple[Any, Sequence[Any]]],
    columns: Columns,
    aliases: Mapping[str, str],
    required: Sequence[str],
    place: Any,
) -> tuple[Any, list[str | None]]:
    """The header row among the first rows: the first naming a required column."""
    for where, values in head:
        names = _canonical(values, aliases)
        if any(n in required for n in names):
            missing = _missing(names, columns, required)
            if missing:
                raise ConfigError(
                    [f"{path}:{place(where)}: missing column(s) {', '.join(missing)}"]
                )
            return where, names
    first = head[0][0] if head else 1
    every = ", ".join(_named(n, columns) for n in required)
    raise ConfigError([f"{path}:{place(first)}: missing column(s) {every}"])


# --- XLSX -------------------------------------------------------------------------------------


def _xlsx_rows(
    path: Path, columns: Columns, aliases: Mapping[str, str], required: Sequence[str]
) -> Iterator[Row]:
    """Every sheet that has a header; sheets without one (填表说明, notes) are skipped,
    but a workbook with no table at all is missing its columns."""
    import openpyxl  # about 0.2 s to import: only workbooks pay for it

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # zipfile, XML and openpyxl errors alike: not a workbook
        raise ConfigError([f"{path}: cannot read workbook: {e}"]) from None
    tables: list[tuple[str, int, list[str | None], Iterator[tuple[int, tuple[Any, ...]]]]] = []
    problems: list[ConfigError] = []
    for sheet in book.worksheets:
        rows = enumerate(sheet.iter_rows(values_only=True), start=1)
        head = list(itertools.islice(rows, HEADER_SEARCH_ROWS))
        try:
            line, names = _header(
                path, head, columns, aliases, required, lambda n, s=sheet.title: f"{s}!{n}"
            )
        except ConfigError as e:
            problems.append(e)
            continue
        rest = itertools.chain([r for r in head if r[0] > line], rows)
        tables.append((sheet.title, line, names, rest))
    if not tables:
        raise problems[0] if problems else ConfigError([f"{path}: the workbook has no sheet"])
    return _xlsx_fields(path, book, tables)


def _xlsx_fields(
    path: Path,
    book: Any,
    tables: list[tuple[str, int, list[str | None], Iterator[tuple[int, tuple[Any, ...]]]]],
) -> Iterator[Row]:
    try:
        for title, _, names, rows in tables:
            wanted = [(i, n) for i, n in enumerate(names) if n is not None]
            for line, values in rows:
                fields = {n: _cell(values[i]) for i, n in wanted if i < len(values)}
                if any(v != "" for v in fields.values()):
                    yield Row(path, f"{title}!{line}", fields)
    finally:
        book.close()


def _cell(value: Any) -> Any:
    """Dates and times stay typed (a rota needs them); everything else becomes text."""
    if isinstance(value, datetime | date | time):
        return value
    return text(value)


# --- YAML -------------------------------------------------------------------------------------


def _yaml_rows(path: Path, aliases: Mapping[str, str]) -> Iterator[Row]:
    try:
        content = path.read_text(encoding="utf-8-sig")
        node = yaml.compose(content, Loader=yaml.SafeLoader)
        data = yaml.safe_load(content)
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{path}: cannot read: {e}"]) from None
    except yaml.YAMLError as e:
        raise ConfigError([f"{path}: not valid YAML: {e}"]) from None
    if not isinstance(data, list) or node is None:
        raise ConfigError([f"{path}:1: a YAML table is a list of entries"])
    rows = []
    for item, item_node in zip(data, node.value, strict=True):
        line = item_node.start_mark.line + 1
        if not isinstance(item, Mapping):
            raise ConfigError([f"{path}:{line}: each entry is a mapping of fields"])
        # The same Chinese/English names as a CSV header ("编号", "phone", …).
        fields = {aliases[k]: v for k, v in _keys(item) if k in aliases}
        rows.append(Row(path, str(line), fields))
    return iter(rows)


def _keys(item: Mapping[Any, Any]) -> Iterator[tuple[str, Any]]:
    for k, v in item.items():
        yield str(k).strip().casefold(), v
