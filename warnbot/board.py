"""The ack board (叫应看板): each person's state and the counts per tier; the muster
board (集结): who has arrived and who is on the way against the deadline. Pure.

Every view (``warnbot status``, the console, the API, the drill report, the demo)
reads a person's state from here, so they agree: after an upgrade a person counts
once, by their current request, and a person the new level no longer reaches who
had not answered is "no longer asked" (不再需要) — never silent or pending."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from warnbot.model import Request, Tier

STATES = ("confirmed", "late", "pending", "silent", "unreachable")
# 不再需要: asked, then the ask was taken back unanswered — an upgrade superseded it and the
# new level no longer reaches the person (told of the upgrade, not asked again). Not
# silent, not pending: shown apart, and counted in no state and no total.
NO_LONGER_ASKED = "no_longer_asked"


def state(req: Request, now: datetime) -> str:
    """confirmed, late (迟到确认), no longer asked (不再需要, see ``NO_LONGER_ASKED``),
    unreachable (无法联系), pending (window still open) or silent (未应答). An answer
    given, even to an ask taken back, counts."""
    if req.confirmed_at is not None:
        return "late" if req.confirmed_at > req.deadline else "confirmed"
    if req.status == "superseded":
        return NO_LONGER_ASKED
    if req.status == "unreachable":
        return "unreachable"
    return "pending" if now <= req.deadline else "silent"


def withdrawn(req: Request) -> bool:
    """Whether ``req`` is an ask taken back before it was answered. As a person's current
    request it means the level now in force does not ask them (``NO_LONGER_ASKED``)."""
    return req.status == "superseded" and req.confirmed_at is None


def current(requests: Iterable[Request]) -> list[Request]:
    """Each person's latest request: after an upgrade asked again, the new one counts.
    A person the upgrade no longer reaches keeps their superseded one (see ``asked``)."""
    latest: dict[str, Request] = {}
    for r in requests:
        if r.responder_key not in latest or r.id > latest[r.responder_key].id:
            latest[r.responder_key] = r
    return sorted(latest.values(), key=lambda r: r.id)


def asked(requests: Iterable[Request]) -> list[Request]:
    """Each person's current request, leaving out persons no longer asked: whom the
    board counts (confirmed, late, pending, silent, unreachable)."""
    return [r for r in current(requests) if not withdrawn(r)]


def no_longer_asked(requests: Iterable[Request]) -> list[Request]:
    """The current requests of persons no longer asked (不再需要), shown apart."""
    return [r for r in current(requests) if withdrawn(r)]


@dataclass(frozen=True)
class TierTally:
    """One tier's counts of persons asked; ``total`` is their sum (late answers in
    ``late``), ``no_longer_asked`` the persons beside it whose ask was taken back."""

    tier: Tier
    total: int
    confirmed: int
    late: int
    pending: int
    silent: int
    escalated: int
    unreachable: int = 0
    delivered: int = 0  # the provider reported the ask delivered
    no_longer_asked: int = 0  # 不再需要: in no other count, nor in ``total``


def tally(requests: Iterable[Request], now: datetime) -> list[TierTally]:
    """Counts per tier of each person's current request, top tier first; ``escalated``
    counts people whose superior was told. A person no longer asked counts only as
    such, so a tier an upgrade dropped shows a total of 0 and who was told instead."""
    rows = current(requests)
    return [
        _tier(t, [r for r in rows if r.tier == t], now)
        for t in Tier
        if any(r.tier == t for r in rows)
    ]


def _tier(tier: Tier, rows: list[Request], now: datetime) -> TierTally:
    counted = [r for r in rows if not withdrawn(r)]
    states = [state(r, now) for r in counted]
    counts = {s: states.count(s) for s in STATES}
    escalated = sum(1 for r in counted if r.escalated_at is not None)
    delivered = sum(1 for r in counted if r.delivered_at is not None)
    return TierTally(
        tier,
        len(counted),
        escalated=escalated,
        delivered=delivered,
        no_longer_asked=len(rows) - len(counted),
        **counts,
    )


HEADINGS = (
    "层级 tier",
    "人数 total",
    "确认 confirmed",
    "迟到 late",
    "待确认 pending",
    "未应答 silent",
    "无法联系 unreachable",
    "已上报 escalated",
)


def lines(tallies: Iterable[TierTally]) -> list[str]:
    """The board as text lines aligned for a terminal (CJK characters are two columns),
    then, when an upgrade took asks back, one line of who is no longer asked per tier."""
    rows = list(tallies)
    table = _table(
        HEADINGS,
        [
            [
                f"{t.tier.zh} {t.tier.value}",
                *(
                    str(n)
                    for n in (
                        t.total,
                        t.confirmed,
                        t.late,
                        t.pending,
                        t.silent,
                        t.unreachable,
                        t.escalated,
                    )
                ),
            ]
            for t in rows
        ],
    )
    apart = "、".join(
        f"{t.tier.zh} {t.tier.value} {t.no_longer_asked}" for t in rows if t.no_longer_asked
    )
    if apart:
        table.append(f"不再需要 no longer asked (已告知升级 told of the upgrade): {apart}")
    return table


def _table(headings: Iterable[str], rows: list[list[str]]) -> list[str]:
    head = list(headings)
    widths = [max(_width(c) for c in col) for col in zip(head, *rows, strict=False)]
    return [
        "  ".join(_pad(c, w, i) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in [head, *rows]
    ]


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, column: int) -> str:
    space = " " * (width - _width(text))
    return text + space if column == 0 else space + text


def summary(tallies: Iterable[TierTally]) -> str:
    """``叫应: <confirmed>/<total> confirmed, <escalated> escalated`` (late answers count),
    then ``, <n> unreachable`` when anyone is and ``, <n> no longer asked`` when an
    upgrade took asks back (they are not in ``<total>``)."""
    rows = list(tallies)
    confirmed = sum(t.confirmed + t.late for t in rows)
    total = sum(t.total for t in rows)
    line = f"叫应: {confirmed}/{total} confirmed, {sum(t.escalated for t in rows)} escalated"
    unreachable = sum(t.unreachable for t in rows)
    line += f", {unreachable} unreachable" if unreachable else ""
    apart = sum(t.no_longer_asked for t in rows)
    return line + (f", {apart} no longer asked" if apart else "")


# --- muster (集结) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MusterTally:
    """One tier of a muster: who arrived (in time or late), who is on the way (answered
    "received", not arrived), who has not answered at all, against ``deadline``."""

    tier: Tier
    deadline: datetime
    arrived: tuple[str, ...]
    arrived_late: tuple[str, ...]
    on_the_way: tuple[str, ...]
    silent: tuple[str, ...]

    @property
    def total(self) -> int:
        return len(self.arrived) + len(self.arrived_late) + len(self.on_the_way) + len(self.silent)


def muster(requests: Iterable[Request]) -> list[MusterTally]:
    """Per tier, the muster requests among each person's current ones (keys listed);
    a person no longer asked is not expected at the muster point."""
    rows = [r for r in asked(requests) if r.muster_deadline is not None]
    out = []
    for t in Tier:
        mine = [r for r in rows if r.tier == t]
        if not mine:
            continue
        out.append(
            MusterTally(
                t,
                max(r.muster_deadline for r in mine if r.muster_deadline is not None),
                _keys(mine, lambda r: r.arrived_at is not None and not _late(r)),
                _keys(mine, lambda r: r.arrived_at is not None and _late(r)),
                _keys(mine, lambda r: r.arrived_at is None and r.confirmed_at is not None),
                _keys(mine, lambda r: r.arrived_at is None and r.confirmed_at is None),
            )
        )
    return out


def _late(r: Request) -> bool:
    return bool(r.arrived_at and r.muster_deadline and r.arrived_at > r.muster_deadline)


def _keys(rows: list[Request], keep: Callable[[Request], bool]) -> tuple[str, ...]:
    return tuple(r.responder_key for r in rows if keep(r))


MUSTER_HEADINGS = (
    "集结 muster",
    "时限 by",
    "人数 total",
    "已到岗 arrived",
    "迟到 late",
    "在途 on the way",
    "未应答 silent",
)


def muster_lines(
    tallies: Iterable[MusterTally], names: Mapping[str, str], now: datetime, limit: int = 12
) -> list[str]:
    """The muster board: a count row per tier, then who is on the way and who has not
    answered once the deadline has passed (names, at most ``limit`` each)."""
    rows = list(tallies)
    table = _table(
        MUSTER_HEADINGS,
        [
            [
                f"{t.tier.zh} {t.tier.value}",
                f"{t.deadline:%H:%M}Z{' 已过 passed' if now > t.deadline else ''}",
                *(
                    str(n)
                    for n in (
                        t.total,
                        len(t.arrived) + len(t.arrived_late),
                        len(t.arrived_late),
                        len(t.on_the_way),
                        len(t.silent),
                    )
                ),
            ]
            for t in rows
        ],
    )
    for t in rows:
        for label, keys in (("在途 on the way", t.on_the_way), ("未应答 silent", t.silent)):
            if keys:
                table.append(f"  {t.tier.zh} {label}: {_names(keys, names, limit)}")
    return table


def _names(keys: tuple[str, ...], names: Mapping[str, str], limit: int) -> str:
    shown = "、".join(names.get(k, k) for k in keys[:limit])
    return shown + (f" …等{len(keys)}人 ({len(keys)} in all)" if len(keys) > limit else "")
