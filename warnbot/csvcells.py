"""CSV for spreadsheets, every text cell kept from running as a formula.

A name, hazard or headline typed as ``=HYPERLINK(…)`` must reach Excel or WPS as
text, never as a formula (OWASP "CSV injection": cells starting with
``= + - @``, a tab or a carriage return). One place writes such CSV: the
console's exports and ``warnbot drill report`` both go through ``table``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe(value: Any) -> Any:
    """A text cell a spreadsheet shows as text: a leading formula character is quoted
    with ``'``; other values pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], lineterminator: str = "\r\n"
) -> str:
    """CSV text of ``header`` and ``rows``, every cell through ``safe``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=lineterminator)
    writer.writerow([safe(cell) for cell in header])
    writer.writerows([safe(cell) for cell in row] for row in rows)
    return out.getvalue()
