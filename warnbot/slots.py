"""Rate-limit slots: the buckets a message draws on, and the slots booked from them.

A bucket is one limit the provider enforces: an account (Twilio's SMS and voice
draw on one account), or one sender (each DingTalk/WeCom robot takes 20
messages a minute). ``[rate_limits.<name>]`` describes one; ``channels`` lists
the channels drawing on it (by default the channel of the same name) and
``per_sender`` makes it one bucket per destination (group, robot). A message
draws on every bucket that names its channel.

Slots are booked from the store (``Store.reserve``, on the database's clock, so
every process books on one timeline): consecutive slots for a few seconds of
sends in one round trip — a *run* — taken from all of a message's buckets at
once. Within its run a process sees every send, so a sender that woke late may
still go while each bucket's window has room; near the run's end it gives the
slot up instead (the next run, maybe another process's, starts on time).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from warnbot.settings import RateLimit
from warnbot.sms import segments
from warnbot.store.outbox import OutboxRow, OutboxStore

LEAD_S = 0.2  # from booking an idle channel's first slot to sending: round trips, compiles
# Of a limit's guard, the share a sender may wake late and still send in its slot; the
# rest is for the wire (the request's own jitter between process and provider). A third:
# on loopback a request's delay reached 10 ms (p99 2 ms), and with two thirds for
# lateness the 5 ms left let a provider count 21 in one second of a 20/s limit.
LATE_SHARE = 1 / 3
CHUNK_S = 5.0  # slots booked in one round trip: a batch's sends over the next seconds
_KEY_CHARS = 100  # rate_buckets.name


@dataclass(frozen=True)
class Bucket:
    """One shared limit: its row in ``rate_buckets`` and its terms."""

    key: str
    limit: RateLimit


def buckets_for(limits: Mapping[str, RateLimit], channel: str, address: str) -> tuple[Bucket, ...]:
    """The buckets a message to ``address`` on ``channel`` draws on, in name order."""
    found = []
    for name, limit in sorted(limits.items()):
        if channel in (limit.channels or [name]):
            key = f"channel:{name}:{address}" if limit.per_sender else f"channel:{name}"
            found.append(Bucket(_short(key), limit))
    return tuple(found)


def _short(key: str) -> str:
    if len(key) <= _KEY_CHARS:
        return key
    return key[:60] + hashlib.sha256(key.encode()).hexdigest()[:32]


def spacing_s(limit: RateLimit) -> float:
    """Seconds between two slots: ``1 / rate_per_s``, plus a share of ``guard_s`` so that
    the sends of any one second span at least a second and ``guard_s`` — room for a
    sender that wakes a little late, or a request a little slow on the wire, without
    a provider ever counting more than the rate in one second."""
    if limit.rate_per_s >= 1:
        return (1.0 + limit.guard_s) / limit.rate_per_s
    return 1.0 / limit.rate_per_s + limit.guard_s


def late_ok_s(limit: RateLimit) -> float:
    """How late a sender may wake and still use its slot: a share of the room the
    spacing leaves in a second (the guard, or much more for a slow rate)."""
    per_second = max(1, math.floor(limit.rate_per_s))
    return max(limit.guard_s, per_second * spacing_s(limit) - 1.0) * LATE_SHARE


def cost(limit: RateLimit, parts: int) -> float:
    """What one message of ``parts`` SMS segments costs a bucket: its segments where the
    provider meters segments (a 2-part Chinese SMS costs 2), else 1."""
    return float(parts) if limit.per_segment else 1.0


def step_s(buckets: Sequence[Bucket], parts: int) -> float:
    """The slot one message takes: the longest of its buckets' spacings for its cost."""
    return max(cost(b.limit, parts) * spacing_s(b.limit) for b in buckets)


@dataclass
class Window:
    """One bucket's sends started within this run: (time, cost), the last second's."""

    limit: RateLimit
    starts: deque[tuple[float, float]] = field(default_factory=deque)

    def wait_s(self, now: float, parts: int) -> float:
        """0.0 when one more send of ``parts`` fits this second, else how long until it does."""
        width_s = 1.0 + self.limit.guard_s * (1 - LATE_SHARE)  # the wire's share, too
        while self.starts and self.starts[0][0] <= now - width_s:
            self.starts.popleft()
        if sum(c for _, c in self.starts) + self._cost(parts) <= self._room():
            return 0.0
        return self.starts[0][0] + width_s - now

    def record(self, now: float, parts: int) -> None:
        self.starts.append((now, self._cost(parts)))

    def _room(self) -> int:
        return max(1, math.floor(self.limit.rate_per_s))

    def _cost(self, parts: int) -> float:
        return min(cost(self.limit, parts), self._room())  # a long SMS at a slow rate still goes


@dataclass
class Run:
    """Consecutive slots booked in one round trip, and the sends started in them.

    Within a run this process sees every send, so a sender that woke late may still
    go, as long as no second of the run's actual starts holds more than any bucket's
    rate (the senders after it wait a little if need be). Only near the run's end,
    where the next run — perhaps another process's — starts on time, is lateness
    beyond the guard's share refused: that slot is given up and a new one booked.
    """

    end: float  # time.time() when the run's last slot is over
    windows: list[Window]

    @classmethod
    def of(cls, end: float, buckets: Sequence[Bucket]) -> Run:
        return cls(end, [Window(b.limit) for b in buckets])

    def admit(self, slot_at: float, parts: int = 1, now: float | None = None) -> float | None:
        """0.0: go now (the start is recorded in every window); seconds to wait for room;
        None: too late near the run's end, the slot is lost (``slot_missed``)."""
        now = time.time() if now is None else now
        if any(self._missed(w.limit, slot_at, now) for w in self.windows):
            return None
        wait_s = max(w.wait_s(now, parts) for w in self.windows)
        if wait_s == 0.0:
            for w in self.windows:
                w.record(now, parts)
        return wait_s

    def _missed(self, limit: RateLimit, slot_at: float, now: float) -> bool:
        near_end = slot_at + 1.0 > self.end - spacing_s(limit)
        return near_end and now - slot_at > late_ok_s(limit)


@dataclass(frozen=True)
class Slot:
    """When one row may be sent (``time.time()``), within its run."""

    at: float
    run: Run


async def book(
    store: OutboxStore,
    buckets: Sequence[Bucket],
    rows: Sequence[OutboxRow],
    horizon_s: float,
    ahead_s: float | None = None,
) -> dict[int, Slot]:
    """Book consecutive slots for ``rows`` from all of ``buckets`` at once, in chunks of
    at most ``CHUNK_S``; one round trip a chunk. Rows whose chunk would start more than
    ``horizon_s`` ahead are left out (their caller hands them back); with ``ahead_s``
    (public tips) only one chunk of that many seconds is booked, so an ask arriving
    later never waits behind more than that of them."""
    parts = {r.id: segments(r.body) for r in rows}
    step = {r.id: step_s(buckets, parts[r.id]) for r in rows}
    chunk_s = CHUNK_S if ahead_s is None else ahead_s
    if ahead_s is not None:
        rows = _chunks(rows, lambda r: step[r.id], chunk_s)[0]
    keys = [b.key for b in buckets]
    offset_s = await store.clock_offset_s()
    slots: dict[int, Slot] = {}
    for chunk in _chunks(rows, lambda r: step[r.id], chunk_s):
        span_s = sum(step[r.id] for r in chunk)
        start = await store.reserve(keys, span_s, horizon_s, lead_s=LEAD_S)
        if start is None:
            break
        at = start - offset_s  # this process's time.time() of the booked start
        run = Run.of(at + span_s, buckets)
        for row in chunk:
            slots[row.id] = Slot(at, run)
            at += step[row.id]
    return slots


def _chunks(
    rows: Sequence[OutboxRow], span: Callable[[OutboxRow], float], chunk_s: float
) -> list[list[OutboxRow]]:
    chunks: list[list[OutboxRow]] = [[]]
    used = 0.0
    for row in rows:
        if chunks[-1] and used + span(row) > chunk_s:
            chunks.append([])
            used = 0.0
        chunks[-1].append(row)
        used += span(row)
    return [c for c in chunks if c]
