"""Incident events: every transition of an incident as it was applied.

Each row is written with the transition itself (``store.incidents.apply_changes``),
whoever made it — a feed, expiry, the console, the API, a drill — so an incident's
timeline shows them all, each once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from warnbot.model import Level
from warnbot.store.sql import Base
from warnbot.store.tables import incident_events


@dataclass(frozen=True)
class IncidentEvent:
    """One applied transition; ``previous_level`` is the level before it (None for open)."""

    incident_id: int
    kind: str
    level: Level
    previous_level: Level | None
    reason: str
    source: str
    at: datetime
    warning_key: str | None = None


class EventStore(Base):
    """Mixed into ``Store``."""

    async def incident_events(self, incident_id: int) -> list[IncidentEvent]:
        """The incident's transitions, oldest first."""
        query = (
            sa.select(incident_events)
            .where(incident_events.c.incident_id == incident_id)
            .order_by(incident_events.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            IncidentEvent(
                r["incident_id"],
                r["kind"],
                Level(r["level"]),
                Level(r["previous_level"]) if r["previous_level"] is not None else None,
                r["reason"],
                r["source"],
                r["at"],
                r["warning_key"],
            )
            for r in rows
        ]
