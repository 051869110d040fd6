"""Versions of the lists an office keeps in files (the roster, the transfer lists).

Each list has one row in ``imports``: a version raised by every import, the content's
SHA-256, where it came from (``via`` config or import) and, apart, the SHA-256 of
the configured file when it was last applied. A start (or a running process's
refresh) applies the configured file only when its content differs from that, so an
explicit import stays until the file changes, and every process can compare the
version on a cheap periodic read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from warnbot.store.sql import insert_ignore
from warnbot.store.tables import imports

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the placeholder row's time, before any import


@dataclass(frozen=True)
class ImportState:
    """The last import of a list: its version (1, 2, …), content hash, where it came
    from (``via`` config or import) and the configured file's hash when last applied."""

    version: int
    sha256: str
    source: str
    via: str
    config_sha256: str | None
    imported_at: datetime


async def read_state(conn: AsyncConnection, name: str) -> ImportState | None:
    """List ``name``'s last import, or None before the first."""
    query = sa.select(imports).where(imports.c.name == name)
    row = (await conn.execute(query)).mappings().one_or_none()
    return _state(row) if row and row["version"] else None


@dataclass(frozen=True)
class Origin:
    """Where an import comes from: the content's SHA-256, the file, ``via`` (config or
    import), when, and — for the configured file — its SHA-256 to remember."""

    sha256: str
    source: str
    via: str
    at: datetime
    config_sha256: str | None = None


async def record_import(conn: AsyncConnection, name: str, origin: Origin) -> ImportState:
    """Raise list ``name``'s version, in the caller's transaction (which replaces the
    list itself). An import of the configured file remembers its hash; other imports
    keep the one stored, so the file is not applied again until it changes. Two
    processes importing at once take turns on the row's lock."""
    before = await _locked_state(conn, name)
    state = ImportState(
        (before.version if before else 0) + 1,
        origin.sha256,
        origin.source[:500],
        origin.via,
        origin.config_sha256 or (before.config_sha256 if before else None),
        origin.at,
    )
    values = dataclasses.asdict(state)
    await conn.execute(imports.update().where(imports.c.name == name).values(values))
    return state


async def _locked_state(conn: AsyncConnection, name: str) -> ImportState | None:
    """The import row, locked for this transaction (created first if missing)."""
    placeholder = {"name": name, "version": 0, "sha256": "", "source": "", "via": ""}
    await conn.execute(insert_ignore(conn, imports).values({**placeholder, "imported_at": _EPOCH}))
    query = sa.select(imports).where(imports.c.name == name).with_for_update()
    row = (await conn.execute(query)).mappings().one()
    return _state(row) if row["version"] else None


def _state(r: Any) -> ImportState:
    return ImportState(
        r["version"], r["sha256"], r["source"], r["via"], r["config_sha256"], r["imported_at"]
    )
