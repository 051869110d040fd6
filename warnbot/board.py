"""The ack board (叫应看板): each request's state and the counts per tier. Pure."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from warnbot.model import Request, Tier

STATES = ("confirmed", "late", "pending", "silent")


def state(req: Request, now: datetime) -> str:
    """confirmed, late (迟到确认), pending (window still open) or silent (未应答)."""
    if req.confirmed_at is not None:
        return "late" if req.confirmed_at > req.deadline else "confirmed"
    return "pending" if now <= req.deadline else "silent"


@dataclass(frozen=True)
class TierTally:
    tier: Tier
    total: int
    confirmed: int
    late: int
    pending: int
    silent: int
    escalated: int


def tally(requests: Iterable[Request], now: datetime) -> list[TierTally]:
    """Counts per tier, top tier first; ``escalated`` counts people whose superior was told."""
    rows = list(requests)
    return [
        _tier(t, [r for r in rows if r.tier == t], now)
        for t in Tier
        if any(r.tier == t for r in rows)
    ]


def _tier(tier: Tier, rows: list[Request], now: datetime) -> TierTally:
    states = [state(r, now) for r in rows]
    counts = {s: states.count(s) for s in STATES}
    escalated = sum(1 for r in rows if r.escalated_at is not None)
    return TierTally(tier, len(rows), escalated=escalated, **counts)


HEADINGS = (
    "层级 tier",
    "人数 total",
    "确认 confirmed",
    "迟到 late",
    "待确认 pending",
    "未应答 silent",
    "已上报 escalated",
)


def lines(tallies: Iterable[TierTally]) -> list[str]:
    """The board as text lines aligned for a terminal (CJK characters are two columns)."""
    rows = [
        [
            f"{t.tier.zh} {t.tier.value}",
            *(str(n) for n in (t.total, t.confirmed, t.late, t.pending, t.silent, t.escalated)),
        ]
        for t in tallies
    ]
    widths = [max(_width(c) for c in col) for col in zip(HEADINGS, *rows, strict=False)]
    return [
        "  ".join(_pad(c, w, i) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in [list(HEADINGS), *rows]
    ]


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, column: int) -> str:
    space = " " * (width - _width(text))
    return text + space if column == 0 else space + text


def summary(tallies: Iterable[TierTally]) -> str:
    """``叫应: <confirmed>/<total> confirmed, <escalated> escalated`` (late answers count)."""
    rows = list(tallies)
    confirmed = sum(t.confirmed + t.late for t in rows)
    total = sum(t.total for t in rows)
    return f"叫应: {confirmed}/{total} confirmed, {sum(t.escalated for t in rows)} escalated"
