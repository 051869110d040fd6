"""SMS arithmetic: segments, cost and how long a queue takes to drain.

Chinese text is UCS-2: 70 characters fit one SMS, 67 per part once split
(the concatenation header takes the rest); GSM-7 text fits 160, then 153.
An office must see before a blast how many segments it sends, what they
cost and how long the provider's rate limit makes it take.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warnbot.settings import RateLimit

#: GSM 03.38 default alphabet (without ESC) and its extension table, whose
#: characters take two septets. Anything else forces UCS-2.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("\f^{}\\[~]|€")


def segments(body: str) -> int:
    """How many SMS parts a provider bills for ``body`` (at least one).

    This ignores that real encoders never split an escape pair or a surrogate pair
    across parts, which can add a part at an exact boundary.
    """
    if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in body):
        units = sum(2 if c in GSM7_EXTENDED else 1 for c in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else math.ceil(units / multi)


@dataclass(frozen=True)
class Estimate:
    """What sending a queue means: messages, segments, money and minutes."""

    messages: int
    segments: int
    cost: float
    drain_s: float | None  # None: no rate limit configured

    def line(self, currency: str = "") -> str:
        drain = "无限速 no limit" if self.drain_s is None else f"{self.drain_s / 60:.1f} 分钟 min"
        return (
            f"{self.messages} 条 messages, {self.segments} 段 segments, "
            f"{currency}{self.cost:.2f}, {drain}"
        )


def cost_of(
    texts: Mapping[str, int] | Iterable[str],
    *,
    rate_per_s: float | None,
    per_segment: bool,
    price_per_segment: float = 0.0,
    total: int | None = None,
) -> Estimate:
    """What sending these messages means, exactly: ``texts`` are their bodies, or each
    body with how many messages carry it (a blast is one text to many). ``total``, when
    more messages wait than ``texts`` counts, extends the same mix to them. Drain time
    at ``rate_per_s`` (the effective rate), counted in segments where they are metered."""
    counts = texts if isinstance(texts, Mapping) else Counter(texts)
    counted = sum(counts.values())
    parts = sum(segments(body) * n for body, n in counts.items())
    messages = max(total or 0, counted)
    if messages > counted:
        parts += round((messages - counted) * (parts / counted if counted else 1.0))
    units = parts if per_segment else messages
    drain = units / rate_per_s if rate_per_s else None
    return Estimate(messages, parts, parts * price_per_segment, drain)


def cost_for(
    texts: Mapping[str, int] | Iterable[str], limit: RateLimit | None, total: int | None = None
) -> Estimate:
    """``cost_of`` under a configured limit (``Settings.limit_for(channel)``): its
    effective rate, its metering and its price; no limit: no price, no drain time."""
    if limit is None:
        return cost_of(texts, rate_per_s=None, per_segment=False, total=total)
    return cost_of(
        texts,
        rate_per_s=limit.effective_per_s,
        per_segment=limit.per_segment,
        price_per_segment=limit.price_per_segment,
        total=total,
    )


def estimate(
    messages: int,
    sample: Iterable[str],
    *,
    rate_per_s: float | None,
    per_segment: bool,
    price_per_segment: float = 0.0,
) -> Estimate:
    """Extrapolate from a sample of the queued texts to the whole queue."""
    parts = [segments(body) for body in sample]
    mean = sum(parts) / len(parts) if parts else 1.0
    total = round(messages * mean)
    units = total if per_segment else messages
    drain = None if not rate_per_s else units / rate_per_s
    return Estimate(messages, total, total * price_per_segment, drain)
