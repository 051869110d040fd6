"""The SMS intake's one read: who sent a reply, and everything they may be answering.

An inbound SMS is attributed by the sender's number, then matched against that
person's requests of open incidents (to answer, to arrive at a muster, or to carry
a report back), and answered with the incident's headline. Read one piece at a
time that was five round trips per webhook; here it is one query, built once:
the number's owner left-joined to their requests of open incidents and each
request's incident. The statement is prepared at import, since building
SQLAlchemy expressions per call cost more than running them (profiled under
``bench/ack_intake.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from warnbot.model import Incident, Request
from warnbot.store.ladder import (
    OPEN_INCIDENTS,
    awaits_arrival,
    can_answer,
    incident_of,
    request_of,
)
from warnbot.store.sql import Base
from warnbot.store.tables import incidents, requests, responder_phones

_INCIDENT_COLUMNS = [c.label(f"i_{c.name}") for c in incidents.c]
# Flat left joins, so the database walks phone → person → their requests of the open
# incidents (by the unique index on incident and person) → incident, instead of first
# joining every request of every open incident.
_SENDER = (
    sa.select(responder_phones.c.responder_key.label("sender_key"), requests, *_INCIDENT_COLUMNS)
    .select_from(
        responder_phones.outerjoin(
            requests,
            sa.and_(
                requests.c.responder_key == responder_phones.c.responder_key,
                requests.c.incident_id.in_(OPEN_INCIDENTS),
            ),
        ).outerjoin(incidents, incidents.c.id == requests.c.incident_id)
    )
    .where(responder_phones.c.phone == sa.bindparam("phone"))
    .order_by(requests.c.id.desc())
)


@dataclass(frozen=True)
class Sender:
    """The person who owns a number, with their requests of open incidents (newest
    first, any state) and those incidents by id."""

    key: str
    requests: tuple[Request, ...] = ()
    incidents: Mapping[int, Incident] = field(default_factory=dict)

    @property
    def open(self) -> list[Request]:
        """Requests an answer can still confirm (``LadderStore.open_requests_for``)."""
        return [r for r in self.requests if can_answer(r)]

    @property
    def answered(self) -> list[Request]:
        """Confirmed requests: a later SMS (a report back) still belongs to one."""
        return [r for r in self.requests if r.status == "confirmed"]

    @property
    def musters(self) -> list[Request]:
        """Muster requests still waiting for arrival (到岗)."""
        return [r for r in self.requests if awaits_arrival(r)]

    def headline(self, incident_id: int) -> str | None:
        incident = self.incidents.get(incident_id)
        return incident.headline if incident else None


class IntakeStore(Base):
    """The read the SMS intake makes before it records anything."""

    async def sender(self, phone: str) -> Sender | None:
        """The owner of ``phone`` on the roster with what they may be answering, in one
        query; None for a number on no roster."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_SENDER, {"phone": phone})).mappings().all()
        if not rows:
            return None
        found = [r for r in rows if r["id"] is not None]
        return Sender(
            rows[0]["sender_key"],
            tuple(request_of(r) for r in found),
            {r["incident_id"]: incident_of(_unprefixed(r)) for r in found},
        )


def _unprefixed(row: sa.RowMapping) -> dict[str, Any]:
    return {c.name: row[f"i_{c.name}"] for c in incidents.c}
