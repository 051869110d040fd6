"""Small SQL helpers shared by the store's modules."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def insert_ignore(conn: AsyncConnection, table: sa.Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for the engine at hand."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


class Base:
    """What every part of the store shares: the engine and a one-statement update."""

    engine: AsyncEngine

    async def _update(self, table: sa.Table, where: Any, **values: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(table.update().where(where).values(**values))
