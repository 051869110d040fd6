"""The published-CAP part of the store: each incident's chain of documents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from warnbot.model import Message
from warnbot.store.sql import Base, enqueue
from warnbot.store.tables import cap_documents


class CapStore(Base):
    """Methods CAP publishing needs."""

    async def published_in_second(self, second: datetime) -> int:
        """How many documents were published at this second (GB/T 35965 numbers them)."""
        query = sa.select(sa.func.count()).where(cap_documents.c.sent == second)
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def latest_cap(self, incident_id: int) -> tuple[str, bytes] | None:
        """The incident's last document: its reference triple and its XML."""
        query = (
            sa.select(cap_documents)
            .where(cap_documents.c.incident_id == incident_id)
            .order_by(cap_documents.c.sequence.desc())
            .limit(1)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().one_or_none()
        return (row["reference"], row["xml"].encode()) if row else None

    async def cap_published(self, event_id: int) -> bool:
        """Whether the incident event ``event_id`` has its CAP document already."""
        query = sa.select(cap_documents.c.sequence).where(cap_documents.c.event_id == event_id)
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

    async def add_cap(
        self,
        incident_id: int,
        identifier: str,
        reference: str,
        sent: datetime,
        msg_type: str,
        xml: bytes,
        pushes: Sequence[Message],
        now: datetime,
        event_id: int | None = None,
    ) -> None:
        """Keep a published document and queue its pushes downstream, together;
        ``event_id`` names the incident event it publishes (one document each)."""
        async with self.engine.begin() as conn:
            query = sa.select(sa.func.coalesce(sa.func.max(cap_documents.c.sequence), 0)).where(
                cap_documents.c.incident_id == incident_id
            )
            sequence = int((await conn.execute(query)).scalar_one()) + 1
            await conn.execute(
                cap_documents.insert().values(
                    incident_id=incident_id,
                    sequence=sequence,
                    identifier=identifier,
                    reference=reference,
                    sent=sent,
                    msg_type=msg_type,
                    xml=xml.decode(),
                    event_id=event_id,
                )
            )
            await enqueue(conn, pushes, now)
