"""Who warnbot reaches: responder rosters, duty rotas (值班表) and public audiences.

Each is a table file an office keeps (CSV, XLSX, YAML; iCalendar for a rota),
read by :mod:`warnbot.rosters.tablefile` and validated row by row, every
problem reported as ``FILE:LINE: what is wrong``. A file with any error is
rejected whole.
"""

from warnbot.rosters.people import file_sha256, load, tier_counts

__all__ = ["file_sha256", "load", "tier_counts"]
