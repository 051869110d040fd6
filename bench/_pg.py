"""Scratch PostgreSQL databases for the benchmarks: made before a run, dropped after."""

from __future__ import annotations

import secrets

import asyncpg

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


async def scratch_pg(prefix: str) -> tuple[str, str]:
    """A new empty database: (SQLAlchemy URL, name)."""
    name = f"{prefix}_{secrets.token_hex(3)}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name


async def drop_pg(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()
