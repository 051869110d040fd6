"""The 叫应 part of the store: requests' states, ladder steps, answers, muster.

A request moves pending → delivered → confirmed, or on to escalated and
unreachable; an upgrade supersedes the open ones with new requests under the
new level. Each answer a person gives is kept verbatim in ``answers`` (the
confirmation once more in ``acks``), whatever it changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from warnbot.model import Incident, Level, LevelPolicy, Message, Request, Step, Tier, TierPolicy
from warnbot.store.sql import Base, enqueue, insert_ignore
from warnbot.store.tables import acks, answers, escalations, incidents, requests

# States an answer can still confirm (unreachable too: a late answer is never lost).
OPEN = ("pending", "delivered", "escalated", "unreachable")
# States the ladder still climbs.
CLIMBING = ("pending", "delivered", "escalated")
# The open incidents' ids: ``requests.incident_id IN`` it finds a person's requests by
# the unique index on (incident, person, level), where a join on the incident's status
# scanned every request ever made.
OPEN_INCIDENTS = sa.select(incidents.c.id).where(incidents.c.status == "open").scalar_subquery()


@dataclass(frozen=True)
class AckResult:
    """What recording an answer did: ``new`` is False for a repeat of the same answer."""

    request: Request
    new: bool
    late: bool


@dataclass(frozen=True)
class Answer:
    """One answer as kept: the text verbatim, who took it when a duty officer did."""

    request_id: int
    responder_key: str
    kind: str  # confirm | arrive | again
    path: str
    text: str
    by_name: str
    late: bool
    received_at: datetime


class LadderStore(Base):
    """Methods the ladder, the ack intake and the board need."""

    async def pending(self) -> list[tuple[Request, TierPolicy]]:
        """Requests the ladder still climbs, of open incidents, with their frozen tier policy."""
        query = (
            sa.select(requests, incidents.c.policy.label("incident_policy"))
            .join(incidents, incidents.c.id == requests.c.incident_id)
            .where(requests.c.status.in_(CLIMBING), incidents.c.status == "open")
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        out = []
        for r in rows:
            policy = tier_policy(r["policy"]) or policy_of(r["incident_policy"]).tiers.get(
                Tier(r["tier"])
            )
            if policy is not None:
                out.append((request_of(r), policy))
        return out

    async def fired_keys(self, incident_ids: Iterable[int]) -> frozenset[str]:
        query = sa.select(escalations.c.key).where(
            escalations.c.incident_id.in_(list(incident_ids))
        )
        async with self.engine.connect() as conn:
            return frozenset((await conn.execute(query)).scalars())

    async def fire(
        self, steps: Sequence[Step], now: datetime, compose: Callable[[list[Step]], list[Message]]
    ) -> list[Step]:
        """Record ladder steps once each, move their requests on and enqueue what they
        send, atomically. A step whose key is already recorded (another tick, another
        process) is dropped. Returns the steps fired now."""
        async with self.engine.begin() as conn:
            fired = [s for s in steps if await _record_step(conn, s, now)]
            told = [s.request_id for s in fired if s.kind == "superior"]
            gone = [s.request_id for s in fired if s.kind == "unreachable"]
            if told:
                await conn.execute(
                    requests.update()
                    .where(requests.c.id.in_(told), requests.c.status.in_(("pending", "delivered")))
                    .values(status="escalated", escalated_at=now)
                )
            if gone:
                await _give_up(conn, requests.c.id.in_(gone), now)
            await enqueue(conn, compose(fired), now)
        return fired

    async def mark_delivered(self, request_id: int, now: datetime) -> bool:
        """The provider says the ask arrived: pending → delivered (later states stay)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                requests.update()
                .where(requests.c.id == request_id, requests.c.delivered_at.is_(None))
                .values(
                    delivered_at=now,
                    status=sa.case(
                        (requests.c.status == "pending", "delivered"), else_=requests.c.status
                    ),
                )
            )
            return bool(result.rowcount)

    async def mark_unreachable(self, responder_key: str, now: datetime) -> list[int]:
        """Every address of the person failed: their climbing requests are unreachable."""
        where = sa.and_(requests.c.responder_key == responder_key, requests.c.status.in_(CLIMBING))
        async with self.engine.begin() as conn:
            ids = list((await conn.execute(sa.select(requests.c.id).where(where))).scalars())
            if ids:
                await _give_up(conn, requests.c.id.in_(ids), now)
        return ids

    async def gave_up_untold(self) -> list[Request]:
        """Requests of open incidents made unreachable without the ladder's
        ``unreachable:<id>`` step (every address failed): the tick fires that step for
        them, so the duty officer is told of every person given up, once."""
        step = escalations.c.key == sa.literal("unreachable:") + sa.cast(requests.c.id, sa.String)
        query = (
            sa.select(requests)
            .join(incidents, incidents.c.id == requests.c.incident_id)
            .where(
                requests.c.status == "unreachable",
                incidents.c.status == "open",
                ~sa.exists().where(step),
            )
            .order_by(requests.c.id)
        )
        async with self.engine.connect() as conn:
            return [request_of(r) for r in (await conn.execute(query)).mappings()]

    async def late_to_muster(self, now: datetime) -> list[Request]:
        """Muster requests of open incidents past their deadline whose person answered
        but has not arrived (在途, on the way): the tick tells their superior."""
        query = (
            sa.select(requests)
            .join(incidents, incidents.c.id == requests.c.incident_id)
            .where(
                incidents.c.status == "open",
                requests.c.muster_deadline <= now,
                requests.c.confirmed_at.is_not(None),
                requests.c.arrived_at.is_(None),
                requests.c.status != "superseded",
            )
            .order_by(requests.c.id)
        )
        async with self.engine.connect() as conn:
            return [request_of(r) for r in (await conn.execute(query)).mappings()]

    async def supersede(self, incident_id: int, level: Level) -> list[Request]:
        """Stop the ladder of every open request of another level (an upgrade asks again)."""
        where = sa.and_(
            requests.c.incident_id == incident_id,
            requests.c.status.in_(OPEN),
            sa.or_(requests.c.level.is_(None), requests.c.level != int(level)),
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(sa.select(requests).where(where))).mappings().all()
            await conn.execute(requests.update().where(where).values(status="superseded"))
        return [request_of(r) for r in rows]

    async def reached(self, incident_id: int) -> set[str]:
        """Everyone asked about the incident, at any level."""
        query = sa.select(requests.c.responder_key).where(requests.c.incident_id == incident_id)
        async with self.engine.connect() as conn:
            return set((await conn.execute(query)).scalars())

    # answers ---------------------------------------------------------------

    async def open_requests_for(self, responder_key: str) -> list[Request]:
        """Requests this person can still answer, newest first."""
        return [r for r in await self._requests_for(responder_key) if can_answer(r)]

    async def answered_for(self, responder_key: str) -> list[Request]:
        """This person's confirmed requests of open incidents, newest first: a later
        SMS (a report back) still belongs to one of them."""
        return [r for r in await self._requests_for(responder_key) if r.status == "confirmed"]

    async def musters_for(self, responder_key: str) -> list[Request]:
        """This person's muster requests still waiting for arrival, newest first."""
        return [r for r in await self._requests_for(responder_key) if awaits_arrival(r)]

    async def _requests_for(self, responder_key: str) -> list[Request]:
        """This person's requests of open incidents, newest first (``IntakeStore.sender``
        reads the same with their number, for an SMS)."""
        query = (
            sa.select(requests)
            .where(
                requests.c.responder_key == responder_key,
                requests.c.incident_id.in_(OPEN_INCIDENTS),
            )
            .order_by(requests.c.id.desc())
        )
        async with self.engine.connect() as conn:
            return [request_of(r) for r in (await conn.execute(query)).mappings()]

    async def record_ack(
        self, request_id: int, path: str, text: str, now: datetime, by: str = ""
    ) -> AckResult | None:
        """Confirm a request once; a repeat answer is kept but changes nothing."""
        async with self._writing() as conn:
            row = await _locked(conn, request_id)
            if row is None:
                return None
            # confirmed_at is set with the ack row, in one transaction: a repeat
            # (a provider's retry, a second "收到") needs no insert to find out
            new = row.confirmed_at is None and await _confirm(conn, row, path, text, now)
            if new:
                row = dataclasses.replace(row, confirmed_at=now, status=_confirmed(row))
            await _answer(conn, row, "confirm" if new else "again", path, text, by, now)
        return AckResult(row, new=new, late=now > row.deadline)

    async def record_arrival(
        self, request_id: int, path: str, text: str, now: datetime, by: str = ""
    ) -> AckResult | None:
        """Arrival at the muster point (到岗), once; it confirms the request too."""
        async with self._writing() as conn:
            row = await _locked(conn, request_id)
            if row is None:
                return None
            if row.confirmed_at is None and await _confirm(conn, row, path, text, now):
                row = dataclasses.replace(row, confirmed_at=now, status=_confirmed(row))
            new = row.arrived_at is None
            if new:
                await conn.execute(
                    requests.update().where(requests.c.id == request_id).values(arrived_at=now)
                )
                row = dataclasses.replace(row, arrived_at=now)
            late = row.muster_deadline is not None and now > row.muster_deadline
            await _answer(conn, row, "arrive" if new else "again", path, text, by, now)
        return AckResult(row, new=new, late=late)

    async def answers_of(self, incident_id: int) -> list[Answer]:
        """Every answer given about an incident, oldest first (for reports back, audit)."""
        query = (
            sa.select(answers)
            .join(requests, requests.c.id == answers.c.request_id)
            .where(requests.c.incident_id == incident_id)
            .order_by(answers.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [Answer(**{f.name: r[f.name] for f in dataclasses.fields(Answer)}) for r in rows]


def can_answer(r: Request) -> bool:
    """Whether an answer can still confirm ``r`` (unreachable too: never lost)."""
    return r.status in OPEN


def awaits_arrival(r: Request) -> bool:
    """A muster request whose person has not arrived (到岗), and not superseded."""
    return r.muster_deadline is not None and r.arrived_at is None and r.status != "superseded"


def _confirmed(row: Request) -> str:
    return "confirmed" if row.status in OPEN else row.status


async def _confirm(
    conn: AsyncConnection, row: Request, path: str, text: str, now: datetime
) -> bool:
    values = {
        "request_id": row.id,
        "path": path,
        "text": text[:1000],
        "late": now > row.deadline,
        "received_at": now,
    }
    if not (await conn.execute(insert_ignore(conn, acks), values)).rowcount:
        return False
    await conn.execute(_CONFIRM, {"rid": row.id, "to": _confirmed(row), "at": now})
    return True


async def _answer(
    conn: AsyncConnection,
    row: Request,
    kind: str,
    path: str,
    text: str,
    by: str,
    now: datetime,
) -> None:
    values = {
        "request_id": row.id,
        "responder_key": row.responder_key,
        "kind": kind,
        "path": path,
        "text": text[:4000],
        "by_name": by[:100],
        "late": now > row.deadline,
        "received_at": now,
    }
    await conn.execute(answers.insert(), values)


async def _give_up(conn: AsyncConnection, where: Any, now: datetime) -> None:
    await conn.execute(
        requests.update()
        .where(where, requests.c.status.in_(CLIMBING))
        .values(status="unreachable", unreachable_at=now)
    )


async def _record_step(conn: AsyncConnection, step: Step, now: datetime) -> bool:
    values = {"key": step.key, "incident_id": step.incident_id, "kind": step.kind, "fired_at": now}
    return bool((await conn.execute(insert_ignore(conn, escalations).values(values))).rowcount)


# Statements of the answer path, built once: building SQLAlchemy expressions per
# answer cost more CPU than running them (bench/ack_intake.py, profiled).
_LOCKED = sa.select(requests).where(requests.c.id == sa.bindparam("rid")).with_for_update()
_CONFIRM = (
    requests.update()
    .where(requests.c.id == sa.bindparam("rid"))
    .values(status=sa.bindparam("to"), confirmed_at=sa.bindparam("at"))
)


async def _locked(conn: AsyncConnection, request_id: int) -> Request | None:
    row = (await conn.execute(_LOCKED, {"rid": request_id})).mappings().one_or_none()
    return request_of(row) if row else None


def request_of(r: Any) -> Request:
    level = r.get("level")
    return Request(
        id=r["id"],
        incident_id=r["incident_id"],
        responder_key=r["responder_key"],
        tier=Tier(r["tier"]),
        reply_code=r["reply_code"],
        status=r["status"],
        sent_at=r["sent_at"],
        deadline=r["deadline"],
        confirmed_at=r.get("confirmed_at"),
        escalated_at=r.get("escalated_at"),
        delivered_at=r.get("delivered_at"),
        unreachable_at=r.get("unreachable_at"),
        level=Level(level) if level else None,
        muster_deadline=r.get("muster_deadline"),
        arrived_at=r.get("arrived_at"),
    )


def incident_of(r: Any) -> Incident:
    """An ``Incident`` from a row of ``incidents`` (its policy as frozen)."""
    return Incident(
        id=r["id"],
        key=r["key"],
        hazard=r["hazard"],
        region_code=r["region_code"],
        level=Level(r["level"]),
        status=r["status"],
        opened_at=r["opened_at"],
        headline=r["headline"],
        policy=policy_of(r["policy"]),
        drill=r["drill"],
        source=r["source"],
    )


def policy_json(policy: LevelPolicy) -> dict[str, Any]:
    data: dict[str, Any] = {t.value: tier_policy_json(p) for t, p in policy.tiers.items()}
    return data | {_TRANSFER: True} if policy.transfer else data


def tier_policy_json(policy: TierPolicy) -> dict[str, Any]:
    data = dataclasses.asdict(policy)
    data["muster_roles"] = list(policy.muster_roles)
    return data


def tier_policy(data: dict[str, Any] | None) -> TierPolicy | None:
    if not data:
        return None
    return TierPolicy(**{**data, "muster_roles": tuple(data.get("muster_roles", ()))})


def policy_of(data: dict[str, Any]) -> LevelPolicy:
    """A stored policy; keys a newer warnbot added are defaulted for older rows."""
    tiers = {Tier(t): p for t, d in data.items() if t != _TRANSFER and (p := tier_policy(d))}
    return LevelPolicy(tiers, transfer=data.get(_TRANSFER) is True)


_TRANSFER = "transfer"  # beside the tiers in a stored policy: the level calls for transfer
