"""The reports-back, transfer-list and drill part of the store.

``ReportStore`` is a mixin of ``Store``: reports back (回执上报) with the figures
read from them, transfer lists and the marks of entries moved, drill plans
claimed once by whichever process sees them due, and the reads a drill report
needs (fired ladder steps, failed addresses).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from warnbot import receipts
from warnbot.drills import DrillPlan, fire_at
from warnbot.model import Level, Responder, Tier
from warnbot.receipts import Filed, Report
from warnbot.regions import RegionTree
from warnbot.store.imports import ImportState, Origin, read_state, record_import
from warnbot.store.sql import Base, insert_ignore
from warnbot.store.tables import (
    address_failures,
    drill_plans,
    escalations,
    reports,
    requests,
    responders,
    transfer_entries,
    transfer_marks,
)
from warnbot.transfers import (
    Mark,
    PersonProgress,
    TransferEntry,
    entry_order,
    marks_from_report,
    progress,
)

_COUNT_COLUMNS = receipts.COUNTS


TRANSFERS = "transfer_lists"  # the transfer lists' row in ``imports``


@dataclass(frozen=True)
class FiredStep:
    """A ladder step that fired: its key, kind (repeat, superior, voice …) and time.
    ``request_id`` is read from the key (``kind:request_id:…``) when it names one."""

    key: str
    kind: str
    fired_at: datetime
    request_id: int | None


class ReportStore(Base):
    """Methods for reports back, transfer lists, drills and drill reports."""

    # reports back ------------------------------------------------------------------------

    async def file_report(
        self,
        incident_id: int,
        request_id: int | None,
        person: Responder,
        report: Report,
        path: str,
        now: datetime,
        dedup_key: str | None = None,
    ) -> tuple[int | None, list[Mark]]:
        """Keep a report verbatim with its figures and mark the transfer-list entries
        it reports moved, together. Returns the report's id (None when ``dedup_key``
        was seen before: nothing changes) and the marks that are new."""
        async with self._writing() as conn:
            row = _report_row(incident_id, request_id, person, report, path, now, dedup_key)
            stmt = insert_ignore(conn, reports).values(row).returning(reports.c.id)
            report_id = (await conn.execute(stmt)).scalar_one_or_none()
            if report_id is None:
                return None, []
            own = await _entries(conn, [person.key])
            marks = marks_from_report(person.key, own, report, now, report_id)
            return report_id, await _mark(conn, incident_id, marks)

    async def reports_of(self, incident_id: int) -> list[Filed]:
        """Every report of an incident, oldest first."""
        query = (
            sa.select(reports)
            .where(reports.c.incident_id == incident_id)
            .order_by(reports.c.received_at, reports.c.id)
        )
        async with self.engine.connect() as conn:
            return [_filed(r) for r in (await conn.execute(query)).mappings()]

    async def report_totals(
        self, incident_id: int, tree: RegionTree | None = None
    ) -> dict[str, receipts.RegionTotals]:
        """The incident's figures per region, each region summing everything below it."""
        return receipts.rollup(await self.reports_of(incident_id), tree)

    # transfer lists ----------------------------------------------------------------------

    async def sync_transfer_lists(self, entries: Sequence[TransferEntry]) -> None:
        """Make the stored lists equal ``entries`` (a whole checked file), in one
        transaction, leaving the version alone (imports go through
        ``import_transfer_lists``). Marks of past incidents stay: they name entries by
        person and number."""
        async with self.engine.begin() as conn:
            await _replace_entries(conn, entries)

    async def import_transfer_lists(
        self, entries: Sequence[TransferEntry], origin: Origin
    ) -> ImportState:
        """Replace the lists and raise their version in one transaction (``origin``: the
        file, and whether it is the configured one, as for ``import_roster``)."""
        async with self.engine.begin() as conn:
            state = await record_import(conn, TRANSFERS, origin)
            await _replace_entries(conn, entries)
            return state

    async def transfer_lists_state(self) -> ImportState | None:
        """The transfer lists' last import, or None before the first (one small row)."""
        async with self.engine.connect() as conn:
            return await read_state(conn, TRANSFERS)

    async def transfer_list(
        self, responder_keys: Iterable[str] | None = None
    ) -> list[TransferEntry]:
        """The entries of these persons (everyone's when None), in list order."""
        async with self.engine.connect() as conn:
            return await _entries(conn, None if responder_keys is None else list(responder_keys))

    async def mark_moved(self, incident_id: int, marks: Sequence[Mark]) -> list[Mark]:
        """Record entries moved (a duty officer's entry, or marks read from a report);
        an entry already marked in this incident keeps its first mark."""
        async with self.engine.begin() as conn:
            return await _mark(conn, incident_id, marks)

    async def mark_moved_by(
        self, incident_id: int, responder_key: str, numbers: Sequence[str], by: str, now: datetime
    ) -> list[Mark]:
        """A duty officer marks entries of ``responder_key``'s list moved in an incident,
        under their own name (``by``, kept on the mark); ``numbers`` are entry numbers
        or ``all`` (全部). Returns the marks that are new (an entry already marked keeps
        its first mark). ValueError, changing nothing, when the name is empty, the
        person was not asked in the incident, or a number is not on their list."""
        if not by.strip():
            raise ValueError("值班员姓名必填 the duty officer's name is required (--by)")
        async with self.engine.begin() as conn:
            asked = sa.select(requests.c.id).where(
                requests.c.incident_id == incident_id, requests.c.responder_key == responder_key
            )
            if (await conn.execute(asked.limit(1))).first() is None:
                raise ValueError(
                    f"{responder_key} 在响应 #{incident_id} 中没有叫应请求 "
                    "was not asked in that incident"
                )
            own = {e.no for e in await _entries(conn, [responder_key])}
            chosen = _chosen(own, numbers, responder_key)
            marks = [Mark(responder_key, n, by.strip(), "duty_officer", now) for n in chosen]
            return await _mark(conn, incident_id, marks)

    async def transfer_marks(self, incident_id: int) -> list[Mark]:
        query = (
            sa.select(transfer_marks)
            .where(transfer_marks.c.incident_id == incident_id)
            .order_by(transfer_marks.c.moved_at)
        )
        async with self.engine.connect() as conn:
            return [_mark_of(r) for r in (await conn.execute(query)).mappings()]

    async def transfer_board(self, incident_id: int) -> list[PersonProgress]:
        """Each list of a person asked in this incident, entry by entry, moved or not."""
        asked = sa.select(requests.c.responder_key).where(requests.c.incident_id == incident_id)
        async with self.engine.connect() as conn:
            people = set((await conn.execute(asked)).scalars())
            entries = await _entries(conn, sorted(people))
        return progress(entries, await self.transfer_marks(incident_id), people)

    # drills ------------------------------------------------------------------------------

    async def schedule_drill(self, plan: DrillPlan, now: datetime) -> DrillPlan:
        """Store a plan with its moment (drawn from its seed); returns it with its id."""
        values = {
            "window_start": plan.window_start,
            "window_end": plan.window_end,
            "fire_at": fire_at(plan),
            "seed": plan.seed,
            "hazard": plan.hazard,
            "headline": plan.headline,
            "level": int(plan.level),
            "regions": list(plan.regions),
            "status": "scheduled",
            "created_by": plan.created_by,
            "created_at": now,
        }
        async with self.engine.begin() as conn:
            stmt = drill_plans.insert().values(values).returning(drill_plans)
            return _plan((await conn.execute(stmt)).mappings().one())

    async def drill_plans(self) -> list[DrillPlan]:
        query = sa.select(drill_plans).order_by(drill_plans.c.window_start, drill_plans.c.id)
        async with self.engine.connect() as conn:
            return [_plan(r) for r in (await conn.execute(query)).mappings()]

    async def cancel_drill(self, plan_id: int) -> bool:
        """Cancel a plan that has not fired; False when it has (or does not exist)."""
        stmt = (
            drill_plans.update()
            .where(drill_plans.c.id == plan_id, drill_plans.c.status == "scheduled")
            .values(status="cancelled")
        )
        async with self.engine.begin() as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def claim_due_drills(
        self, now: datetime, worker: str, lease_s: float = 300.0
    ) -> list[DrillPlan]:
        """Claim every plan due at ``now`` for ``worker``; each is claimed by one process.

        One conditional UPDATE … RETURNING: a concurrent claimer waits on the row
        and then finds it no longer ``scheduled``. A plan claimed ``lease_s`` ago
        whose incidents were never recorded (``drill_fired``: the claimer died) is
        claimed again; its incident keys (``演练:<id>:<region>``) let the new claimer
        see what was already opened.
        """
        stale = now - timedelta(seconds=lease_s)
        due = sa.or_(
            sa.and_(drill_plans.c.status == "scheduled", drill_plans.c.fire_at <= now),
            sa.and_(
                drill_plans.c.status == "fired",
                drill_plans.c.incident_ids.is_(None),
                drill_plans.c.claimed_at <= stale,
            ),
        )
        stmt = (
            drill_plans.update()
            .where(due)
            .values(status="fired", claimed_by=worker[:200], claimed_at=now)
            .returning(drill_plans)
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return sorted((_plan(r) for r in rows), key=lambda p: p.id)

    async def drill_fired(self, plan_id: int, incident_ids: Sequence[int]) -> None:
        """Record the incidents a claimed plan opened; the claim is then final."""
        await self._update(
            drill_plans, drill_plans.c.id == plan_id, incident_ids=list(incident_ids)
        )

    # reads for the drill report --------------------------------------------------------

    async def fired_steps(self, incident_id: int) -> list[FiredStep]:
        """Every ladder step fired for an incident, in the order it fired."""
        query = (
            sa.select(escalations)
            .where(escalations.c.incident_id == incident_id)
            .order_by(escalations.c.fired_at, escalations.c.key)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [FiredStep(r["key"], r["kind"], r["fired_at"], _request_id(r["key"])) for r in rows]

    async def people_by_key(self, keys: Iterable[str]) -> dict[str, Responder]:
        """Persons by key, whether or not still on the active roster (a report names
        everyone who was asked)."""
        query = sa.select(responders).where(responders.c.key.in_(list(keys)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return {r["key"]: _person(r) for r in rows}

    async def failures_since(self, keys: Iterable[str], since: datetime) -> dict[str, set[str]]:
        """Per person, the addresses that failed permanently at or after ``since``."""
        query = sa.select(address_failures.c.responder_key, address_failures.c.address).where(
            address_failures.c.responder_key.in_(list(keys)), address_failures.c.at >= since
        )
        found: dict[str, set[str]] = {}
        async with self.engine.connect() as conn:
            for key, address in (await conn.execute(query)).all():
                found.setdefault(key, set()).add(address)
        return found


# --- helpers --------------------------------------------------------------------------------


def _report_row(
    incident_id: int,
    request_id: int | None,
    person: Responder,
    report: Report,
    path: str,
    now: datetime,
    dedup_key: str | None,
) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "request_id": request_id,
        "responder_key": person.key,
        "tier": person.tier.value,
        "region_code": person.region_code,
        "path": path,
        "text": report.text,
        "code": report.code,
        **{c: getattr(report, c) for c in _COUNT_COLUMNS},
        "arrived": report.arrived,
        "cumulative": report.cumulative,
        "entries": list(report.entries),
        "all_moved": report.all_moved,
        "dedup_key": dedup_key,
        "received_at": now,
    }


def _filed(r: Any) -> Filed:
    report = Report(
        text=r["text"],
        code=r["code"],
        arrived=r["arrived"],
        cumulative=r["cumulative"],
        entries=tuple(r["entries"]),
        all_moved=r["all_moved"],
        **{c: r[c] for c in _COUNT_COLUMNS},
    )
    return Filed(
        r["responder_key"],
        r["region_code"],
        r["received_at"],
        report,
        id=r["id"],
        incident_id=r["incident_id"],
        request_id=r["request_id"],
        tier=r["tier"],
        path=r["path"],
    )


async def _entries(conn: AsyncConnection, keys: list[str] | None) -> list[TransferEntry]:
    query = sa.select(transfer_entries).order_by(transfer_entries.c.id)
    if keys is not None:
        query = query.where(transfer_entries.c.responder_key.in_(keys))
    return [
        TransferEntry(
            r["responder_key"],
            r["no"],
            r["household"],
            r["people"],
            r["route"],
            r["destination"],
            r["phone"],
            r["notes"],
            r["source"],
        )
        for r in (await conn.execute(query)).mappings()
    ]


async def _mark(conn: AsyncConnection, incident_id: int, marks: Sequence[Mark]) -> list[Mark]:
    new = []
    for m in marks:
        values = {
            "incident_id": incident_id,
            "responder_key": m.responder_key,
            "no": m.no,
            "by": m.by[:200],
            "via": m.via,
            "report_id": m.report_id,
            "moved_at": m.moved_at,
        }
        if (await conn.execute(insert_ignore(conn, transfer_marks).values(values))).rowcount:
            new.append(m)
    return new


ALL_ENTRIES = ("all", "全部")


def _chosen(own: set[str], numbers: Sequence[str], responder_key: str) -> list[str]:
    """The entry numbers a duty officer named, checked against the person's list."""
    wanted = [n.strip().removesuffix("号") for n in numbers if n.strip()]
    if any(n.casefold() in ALL_ENTRIES for n in wanted):
        return sorted(own, key=entry_order)
    unknown = [n for n in wanted if n not in own]
    if unknown or not wanted:
        shown = "、".join(unknown) or "—"
        raise ValueError(
            f"{responder_key} 的转移清单中没有 {shown} 号 no such entry in their list "
            f"(有 has: {'、'.join(sorted(own)) or '无 none'})"
        )
    return list(dict.fromkeys(wanted))


def _mark_of(r: Any) -> Mark:
    return Mark(r["responder_key"], r["no"], r["by"], r["via"], r["moved_at"], r["report_id"])


def _plan(r: Any) -> DrillPlan:
    return DrillPlan(
        r["window_start"],
        r["window_end"],
        r["hazard"],
        r["headline"],
        Level(r["level"]),
        tuple(r["regions"]),
        int(r["seed"]),
        id=r["id"],
        status=r["status"],
        created_by=r["created_by"],
        incident_ids=tuple(r["incident_ids"] or ()),
    )


def _person(r: Any) -> Responder:
    return Responder(
        key=r["key"],
        name=r["name"],
        tier=Tier(r["tier"]),
        region_code=r["region_code"],
        phones=tuple(r["phones"]),
        roles=tuple(r["roles"]),
        language=r["language"],
        superior=r["superior"],
    )


def _request_id(key: str) -> int | None:
    parts = key.split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


async def _replace_entries(conn: AsyncConnection, entries: Sequence[TransferEntry]) -> None:
    rows = [
        {
            "responder_key": e.responder_key,
            "no": e.no,
            "household": e.household,
            "people": e.people,
            "phone": e.phone,
            "route": e.route,
            "destination": e.destination,
            "notes": e.notes,
            "source": e.source[:500],
        }
        for e in entries
    ]
    await conn.execute(transfer_entries.delete())
    if rows:
        await conn.execute(transfer_entries.insert(), rows)
