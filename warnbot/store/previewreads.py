"""Reads the manual-response preview needs to show what confirming would really send:
each person's next reply code, the ids their requests would get (so an ack link in
the sample is as long as the real one), and how many public numbers a tip reaches.

Bulk queries only: a preview for a county of 2,500 persons is a handful of
statements, not one per person.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from warnbot import regions
from warnbot.store.ladder import OPEN
from warnbot.store.sql import Base
from warnbot.store.tables import audience_members, audiences, incidents, requests


class PreviewReads(Base):
    """Mixed into ``ConsoleStore``."""

    async def taken_codes(self, responder_keys: Iterable[str]) -> dict[str, set[str]]:
        """Each person's reply codes held by open requests of open incidents: the
        next ask gets the code above them (``model.next_reply_code``)."""
        keys = sorted(set(responder_keys))
        if not keys:
            return {}
        query = (
            sa.select(requests.c.responder_key, requests.c.reply_code)
            .join(incidents, incidents.c.id == requests.c.incident_id)
            .where(
                requests.c.responder_key.in_(keys),
                requests.c.status.in_(OPEN),
                incidents.c.status == "open",
            )
        )
        taken: dict[str, set[str]] = {}
        async with self.engine.connect() as conn:
            for key, code in (await conn.execute(query)).all():
                taken.setdefault(key, set()).add(code)
        return taken

    async def last_request_id(self) -> int:
        """The highest request id so far (0 when none): new requests come after it."""
        async with self.engine.connect() as conn:
            found = (await conn.execute(sa.select(sa.func.max(requests.c.id)))).scalar()
        return int(found or 0)

    async def audience_count(self, name: str, region_codes: Iterable[str]) -> int:
        """How many numbers of audience ``name`` lie in ``region_codes`` or inside them,
        each number once (as ``AudienceStore.audience_numbers`` would stream them)."""
        prefixes = sorted({regions.prefix(c) for c in region_codes})
        if not prefixes:
            return 0
        inside = sa.or_(*(audience_members.c.region_code.startswith(p) for p in prefixes))
        query = (
            sa.select(sa.func.count(sa.distinct(audience_members.c.phone)))
            .join(audiences, audience_members.c.audience_id == audiences.c.id)
            .where(audiences.c.name == name, inside)
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())
