"""The ack board as the console shows it: one row per person, grouped per tier and
region, with the five states a duty officer acts on. Pure.

``board.state`` gives confirmed / late / pending / silent; a person not yet
confirmed whose every number has failed for good is *unreachable* (无法联系):
reminding them is pointless, someone must go or phone another way. After an
upgrade each person has one row, their current request; one the new level no
longer reaches is *no longer asked* (不再需要): a row and a count of its own,
in no group's total.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from warnbot import board
from warnbot.model import Request, Responder, Tier
from warnbot.regions import RegionTree
from warnbot.store.accounts import AckRow, MessageRow

STATES = ("confirmed", "late", "pending", "silent", "unreachable", board.NO_LONGER_ASKED)


@dataclass(frozen=True)
class PersonRow:
    request_id: int
    responder_key: str
    name: str
    tier: Tier
    region_code: str
    region_name: str
    state: str
    channel: str  # how they answered, else how they were asked
    time: datetime  # when they answered, else when they were asked
    deadline: datetime
    escalated: bool


@dataclass(frozen=True)
class Group:
    """One tier, or one region, with its counts per state."""

    label: str  # the tier, or the region code
    counts: Mapping[str, int]
    total: int
    name: str = ""  # the region's name

    @property
    def answered(self) -> int:
        return self.counts.get("confirmed", 0) + self.counts.get("late", 0)

    @property
    def rate(self) -> float:
        return self.answered / self.total if self.total else 0.0


@dataclass(frozen=True)
class BoardView:
    rows: list[PersonRow]
    tiers: list[Group]
    regions: list[Group]

    @property
    def total(self) -> Group:
        return _group("total", self.rows)


def person_state(req: Request, now: datetime, failed: set[str], phones: Sequence[str]) -> str:
    state = board.state(req, now)
    if state in ("pending", "silent") and phones and set(phones) <= failed:
        return "unreachable"
    return state


def build(
    requests: Iterable[Request],
    people: Mapping[str, Responder],
    acks: Iterable[AckRow],
    messages: Iterable[MessageRow],
    failures: Mapping[str, set[str]],
    tree: RegionTree | None,
    now: datetime,
) -> BoardView:
    """A row per person asked about one incident (their current request), top tier
    first, then region and name."""
    answered = {a.request_id: a for a in acks}
    asked_by = {m.responder_key: m.channel for m in messages if m.responder_key}
    rows = [
        _row(r, people.get(r.responder_key), answered.get(r.id), asked_by, failures, tree, now)
        for r in board.current(requests)
    ]
    order = list(Tier)
    rows.sort(key=lambda p: (order.index(p.tier), p.region_code, p.name))
    tiers = [_group(t.value, [p for p in rows if p.tier == t]) for t in Tier]
    codes = sorted({p.region_code for p in rows})
    regions = [
        _group(c, [p for p in rows if p.region_code == c], region_name(tree, c)) for c in codes
    ]
    return BoardView(rows, [t for t in tiers if t.counts], regions)


def _row(
    req: Request,
    person: Responder | None,
    ack: AckRow | None,
    asked_by: Mapping[str, str],
    failures: Mapping[str, set[str]],
    tree: RegionTree | None,
    now: datetime,
) -> PersonRow:
    phones = person.phones if person else ()
    region = person.region_code if person else ""
    return PersonRow(
        request_id=req.id,
        responder_key=req.responder_key,
        name=person.name if person else req.responder_key,
        tier=req.tier,
        region_code=region,
        region_name=region_name(tree, region),
        state=person_state(req, now, failures.get(req.responder_key, set()), phones),
        channel=ack.path if ack else asked_by.get(req.responder_key, ""),
        time=ack.received_at if ack else req.sent_at,
        deadline=req.deadline,
        escalated=req.escalated_at is not None,
    )


def _group(label: str, rows: Sequence[PersonRow], name: str = "") -> Group:
    """Counts per state; the total leaves out persons no longer asked."""
    counted = sum(1 for p in rows if p.state != board.NO_LONGER_ASKED)
    return Group(label, Counter(p.state for p in rows), counted, name)


def region_name(tree: RegionTree | None, code: str) -> str:
    if tree is None or not code or code not in tree:
        return code
    return tree.get(code).name


def only(view: BoardView, state: str | None) -> list[PersonRow]:
    """The rows to list: all, or only those in ``state`` (the "silent only" filter)."""
    return [r for r in view.rows if state is None or r.state == state]
