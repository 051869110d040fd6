"""Incident events: every transition of an incident as it was applied.

``record_transition`` is called wherever a transition is applied (``App.apply``
for feeds and expiry, the console and the API for manual actions), so an
incident's timeline shows feed-driven upgrades and lifts as well as a duty
officer's. Recording the same transition twice in a row (the console's call
after ``App.apply`` made its own) keeps one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from warnbot.model import Level
from warnbot.store.sql import Base
from warnbot.store.tables import incident_events

KINDS = ("open", "upgrade", "update", "downgrade", "lift")


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

    async def record_transition(
        self,
        incident_id: int,
        kind: str,
        level: Level,
        reason: str,
        source: str,
        at: datetime,
        warning_key: str | None = None,
    ) -> bool:
        """Record that ``kind`` was applied to an incident; False when the incident's
        latest event is this same transition (kind, level, reason, warning) already."""
        if kind not in KINDS:
            raise ValueError(f"unknown transition {kind!r} (known: {', '.join(KINDS)})")
        async with self.engine.begin() as conn:
            last = (
                (
                    await conn.execute(
                        sa.select(incident_events)
                        .where(incident_events.c.incident_id == incident_id)
                        .order_by(incident_events.c.id.desc())
                        .limit(1)
                    )
                )
                .mappings()
                .one_or_none()
            )
            if last is not None and (
                last["kind"],
                last["level"],
                last["reason"],
                last["warning_key"],
            ) == (kind, level.value, reason, warning_key):
                return False
            values = {
                "incident_id": incident_id,
                "kind": kind,
                "level": level.value,
                "previous_level": last["level"] if last is not None else None,
                "reason": reason[:4000],
                "source": source[:200],
                "warning_key": warning_key[:300] if warning_key else None,
                "at": at,
            }
            await conn.execute(incident_events.insert().values(values))
        return True

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
