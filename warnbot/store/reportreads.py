"""Reads for reports over many incidents at once (the console's after-action and drill
CSV): requests, fired ladder steps and address failures of a batch of incidents in
one query each, so a report of a thousand incidents is a handful of statements, not
several per incident.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa

from warnbot.model import Request
from warnbot.store.ladder import request_of
from warnbot.store.reports import FiredStep, _request_id
from warnbot.store.sql import Base
from warnbot.store.tables import address_failures, escalations, requests


class ReportReads(Base):
    """Mixed into ``ConsoleStore``."""

    async def requests_of_many(self, incident_ids: Sequence[int]) -> dict[int, list[Request]]:
        """Each incident's requests, in id order (an incident without any is absent)."""
        query = (
            sa.select(requests)
            .where(requests.c.incident_id.in_(list(incident_ids)))
            .order_by(requests.c.id)
        )
        found: dict[int, list[Request]] = {}
        async with self.engine.connect() as conn:
            for row in (await conn.execute(query)).mappings():
                found.setdefault(row["incident_id"], []).append(request_of(row))
        return found

    async def fired_steps_of_many(self, incident_ids: Sequence[int]) -> dict[int, list[FiredStep]]:
        """Each incident's fired ladder steps, in the order they fired."""
        query = (
            sa.select(escalations)
            .where(escalations.c.incident_id.in_(list(incident_ids)))
            .order_by(escalations.c.fired_at, escalations.c.key)
        )
        found: dict[int, list[FiredStep]] = {}
        async with self.engine.connect() as conn:
            for r in (await conn.execute(query)).mappings():
                step = FiredStep(r["key"], r["kind"], r["fired_at"], _request_id(r["key"]))
                found.setdefault(r["incident_id"], []).append(step)
        return found

    async def failures_of(self, keys: Iterable[str]) -> list[tuple[str, str, datetime]]:
        """(person, address, when) of every permanent failure of these persons."""
        query = sa.select(
            address_failures.c.responder_key, address_failures.c.address, address_failures.c.at
        ).where(address_failures.c.responder_key.in_(sorted(set(keys))))
        async with self.engine.connect() as conn:
            return [(k, a, at) for k, a, at in (await conn.execute(query)).all()]
