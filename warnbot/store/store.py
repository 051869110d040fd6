"""Store: the persistence methods every stage calls, on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from warnbot import log
from warnbot.model import (
    Delivery,
    Message,
    Request,
    Responder,
    Tier,
    next_reply_code,
)
from warnbot.store import db
from warnbot.store.capdocs import CapStore
from warnbot.store.events import EventStore
from warnbot.store.feeds import FeedStore
from warnbot.store.incidents import IncidentStore
from warnbot.store.intake import IntakeStore
from warnbot.store.ladder import (
    OPEN,
    LadderStore,
    request_of,
    tier_policy_json,
)
from warnbot.store.outbox import OutboxStore
from warnbot.store.people import AudienceStore, RosterStore
from warnbot.store.reports import ReportStore
from warnbot.store.sql import enqueue
from warnbot.store.sql import insert_ignore as _insert_ignore
from warnbot.store.tables import (
    incidents,
    keyring,
    requests,
    responder_phones,
    responders,
)

Compose = Callable[[Request], list[Message]]

_log = log.get(__name__)


class Store(
    IncidentStore,
    LadderStore,
    IntakeStore,
    FeedStore,
    CapStore,
    OutboxStore,
    RosterStore,
    AudienceStore,
    ReportStore,
    EventStore,
):
    """All reads and writes of warnbot's state; see the package docstring."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def connect(cls, url: str) -> Store:
        return cls(db.create_engine(url))

    async def migrate(self) -> None:
        await db.migrate(self.engine)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Close the pool; bounded, because closing a connection an outage left
        half-open can wait on a socket that never answers."""
        try:
            await asyncio.wait_for(self.engine.dispose(), timeout_s)
        except TimeoutError:
            _log.warning("store_close_timed_out", after_s=timeout_s)

    # roster -------------------------------------------------------------

    async def roster(self) -> list[Responder]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(responders).where(responders.c.active))
            return [_responder(r) for r in rows.mappings()]

    async def responder_for_phone(self, phone: str) -> str | None:
        """The key of the person who owns ``phone``, if any."""
        query = sa.select(responder_phones.c.responder_key).where(responder_phones.c.phone == phone)
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).scalar_one_or_none()

    # requests ---------------------------------------------

    async def add_requests(
        self,
        incident_id: int,
        deliveries: Iterable[Delivery],
        now: datetime,
        compose: Compose,
        together: Callable[[list[Request]], list[Message]] | None = None,
    ) -> list[Request]:
        """Create one request per delivery and enqueue its messages, in one transaction;
        ``together`` adds messages about all the new requests at once (group chats).

        A person already asked about this incident is skipped, so replaying a
        plan is harmless.
        """
        created: list[Request] = []
        async with self.engine.begin() as conn:
            for d in deliveries:
                row = await _insert_request(conn, incident_id, d, now)
                if row is not None:
                    created.append(row)
                    await enqueue(conn, compose(row), now)
            if together is not None and created:
                await enqueue(conn, together(created), now)
        return created

    async def request(self, request_id: int) -> Request | None:
        query = sa.select(requests).where(requests.c.id == request_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().one_or_none()
            return request_of(row) if row else None

    async def requests_of(self, incident_id: int) -> list[Request]:
        query = sa.select(requests).where(requests.c.incident_id == incident_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(requests.c.id))).mappings()
            return [request_of(r) for r in rows]

    # keys ------------------------------------------------------

    async def secret(self, name: str, make: Callable[[], str]) -> str:
        """A key generated once and kept, so signed links survive restarts."""
        async with self.engine.begin() as conn:
            await conn.execute(_insert_ignore(conn, keyring).values(name=name, value=make()))
            query = sa.select(keyring.c.value).where(keyring.c.name == name)
            return str((await conn.execute(query)).scalar_one())

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    # helpers -------------------------------------------------------------


async def _insert_request(
    conn: AsyncConnection, incident_id: int, d: Delivery, now: datetime
) -> Request | None:
    values = {
        "incident_id": incident_id,
        "responder_key": d.responder.key,
        "tier": d.tier.value,
        "reply_code": await _free_code(conn, d.responder.key),
        "status": "pending",
        "sent_at": now,
        "deadline": d.deadline,
        "level": int(d.level) if d.level is not None else 0,  # 0: not said (unique key)
        "policy": tier_policy_json(d.policy) if d.policy is not None else None,
        "muster_deadline": d.muster_deadline,
    }
    stmt = _insert_ignore(conn, requests).values(values).returning(requests.c.id)
    new_id = (await conn.execute(stmt)).scalar_one_or_none()
    return None if new_id is None else request_of({"id": new_id, **values})


async def _free_code(conn: AsyncConnection, responder_key: str) -> str:
    """The next reply code above every one this person has open (11 when none), so
    code 11 says the request is the person's only open one when it is asked."""
    query = (
        sa.select(requests.c.reply_code)
        .join(incidents, incidents.c.id == requests.c.incident_id)
        .where(
            requests.c.responder_key == responder_key,
            requests.c.status.in_(OPEN),
            incidents.c.status == "open",
        )
    )
    return next_reply_code((await conn.execute(query)).scalars())


def _responder(r: Any) -> Responder:
    return Responder(
        key=r["key"],
        name=r["name"],
        tier=Tier(r["tier"]),
        region_code=r["region_code"],
        phones=tuple(r["phones"]),
        roles=tuple(r["roles"]),
        language=r["language"],
        superior=r["superior"],
        chat_ids=tuple(sorted((r["chat_ids"] or {}).items())),
    )
