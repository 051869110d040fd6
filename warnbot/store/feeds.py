"""The feeds' part of the store: health, conditional-GET state, seen entries, readings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from warnbot.model import Observation
from warnbot.store.sql import Base, insert_ignore
from warnbot.store.tables import feed_entries, feed_health, observations

_OBSERVATION_FIELDS = (
    "station",
    "quantity",
    "time",
    "value",
    "unit",
    "station_name",
    "region_code",
    "source",
)


class FeedStore(Base):
    """Methods the pollers, the MQTT subscriber and the push endpoint need."""

    async def feed_ok(
        self, name: str, now: datetime, etag: str | None = None, last_modified: str | None = None
    ) -> None:
        """A successful poll; the validators are kept for the next conditional GET."""
        await self._upsert_feed(
            name, last_success=now, failures=0, etag=etag, last_modified=last_modified
        )

    async def feed_failed(self, name: str, error: str, now: datetime) -> None:
        await self._upsert_feed(
            name, last_error=error[:2000], last_error_at=now, failures=feed_health.c.failures + 1
        )

    async def feed_health(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(feed_health).order_by(feed_health.c.name))
            return [dict(r) for r in rows.mappings()]

    async def feed_state(self, name: str) -> dict[str, Any] | None:
        query = sa.select(feed_health).where(feed_health.c.name == name)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().one_or_none()
            return dict(row) if row else None

    async def report_silence(self, name: str, episode: str) -> bool:
        """True the first time a silence ``episode`` of a feed is reported."""
        async with self.engine.begin() as conn:
            await conn.execute(insert_ignore(conn, feed_health).values(name=name, failures=0))
            result = await conn.execute(
                feed_health.update()
                .where(
                    feed_health.c.name == name,
                    sa.or_(
                        feed_health.c.silence_reported.is_(None),
                        feed_health.c.silence_reported != episode,
                    ),
                )
                .values(silence_reported=episode)
            )
            return bool(result.rowcount)

    async def unseen_entries(self, feed: str, entry_ids: Sequence[str]) -> list[str]:
        """The ids among ``entry_ids`` this feed has not taken in yet, in their order."""
        query = sa.select(feed_entries.c.entry_id).where(
            feed_entries.c.feed == feed, feed_entries.c.entry_id.in_(list(entry_ids))
        )
        async with self.engine.connect() as conn:
            seen = set((await conn.execute(query)).scalars())
        return [e for e in entry_ids if e not in seen]

    async def mark_entry_seen(self, feed: str, entry_id: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert_ignore(conn, feed_entries).values(
                    feed=feed, entry_id=entry_id[:500], seen_at=now
                )
            )

    async def record_observations(self, readings: Iterable[Observation]) -> int:
        """Store readings; one already stored (same station, quantity, time) is skipped.
        Returns how many were new."""
        rows = [{f: getattr(o, f) for f in _OBSERVATION_FIELDS} for o in readings]
        if not rows:
            return 0
        async with self.engine.begin() as conn:
            stmt = insert_ignore(conn, observations).values(rows).returning(observations.c.id)
            return len((await conn.execute(stmt)).all())

    async def recent_observations(self, since: datetime) -> list[Observation]:
        """Readings taken at or after ``since``, oldest first."""
        query = (
            sa.select(*(observations.c[f] for f in _OBSERVATION_FIELDS))
            .where(observations.c.time >= since)
            .order_by(observations.c.time)
        )
        async with self.engine.connect() as conn:
            return [Observation(**r) for r in (await conn.execute(query)).mappings()]

    async def _upsert_feed(self, name: str, **values: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert_ignore(conn, feed_health).values(name=name, failures=0))
            await conn.execute(
                feed_health.update().where(feed_health.c.name == name).values(**values)
            )
