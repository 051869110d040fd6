"""Frozen dataclasses passed between pipeline stages.

Stages exchange these plain values only; the store maps them to rows and the
web layer to JSON. Times are timezone-aware UTC ``datetime`` objects.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime


class Level(enum.IntEnum):
    """Response level 应急响应 Ⅳ…Ⅰ; the integer order makes Ⅰ the highest."""

    IV = 4
    III = 3
    II = 2
    I = 1  # noqa: E741 — the office's own name for the top level

    @property
    def roman(self) -> str:
        return {4: "Ⅳ", 3: "Ⅲ", 2: "Ⅱ", 1: "Ⅰ"}[self.value]

    @property
    def colour(self) -> Colour:
        return {4: Colour.BLUE, 3: Colour.YELLOW, 2: Colour.ORANGE, 1: Colour.RED}[self.value]

    def outranks(self, other: Level) -> bool:
        """True when this level is more severe than ``other`` (Ⅰ outranks Ⅱ)."""
        return self.value < other.value

    @classmethod
    def parse(cls, text: str) -> Level:
        """Accept ``"I"``, ``"Ⅰ"``, ``"1"`` or ``"Ⅰ级"``."""
        key = text.strip().removesuffix("级").upper()
        for level in cls:
            if key in (level.name, level.roman, str(level.value)):
                return level
        raise ValueError(f"unknown response level {text!r}")


class Colour(enum.StrEnum):
    """Warning-signal colour 蓝/黄/橙/红."""

    BLUE = "blue"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"

    @property
    def zh(self) -> str:
        return {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}[self.value]


class Tier(enum.StrEnum):
    """Administrative tier 市/县/乡/村, ordered from the top down."""

    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"

    @property
    def zh(self) -> str:
        return {"city": "市级", "county": "县级", "township": "乡镇级", "village": "村级"}[
            self.value
        ]

    @property
    def above(self) -> Tier | None:
        """The tier one step up, or None for the city."""
        order = list(Tier)
        i = order.index(self)
        return order[i - 1] if i else None


class AckPath(enum.StrEnum):
    """How a confirmation reached us."""

    SMS = "sms"
    LINK = "link"
    KEYPAD = "keypad"
    CHAT = "chat"
    DUTY_OFFICER = "duty_officer"


@dataclass(frozen=True)
class Area:
    """One CAP ``<area>``: free text plus the machine-usable parts."""

    description: str
    geocodes: tuple[tuple[str, str], ...] = ()  # (valueName, value)
    polygons: tuple[str, ...] = ()  # CAP "lat,lon lat,lon ..." strings
    circles: tuple[str, ...] = ()  # CAP "lat,lon radius_km"


@dataclass(frozen=True)
class Warning:
    """A normalized hazard warning, CAP-shaped (one ``<alert>`` + its chosen ``<info>``)."""

    identifier: str
    sender: str
    sent: datetime
    status: str  # Actual, Exercise, System, Test, Draft
    msg_type: str  # Alert, Update, Cancel, Ack, Error
    scope: str
    references: tuple[str, ...] = ()  # "sender,identifier,sent" triples as written
    language: str = ""
    event: str = ""
    category: tuple[str, ...] = ()
    urgency: str = ""
    severity: str = ""
    certainty: str = ""
    headline: str = ""
    description: str = ""
    instruction: str = ""
    sender_name: str = ""
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    colour: Colour | None = None
    areas: tuple[Area, ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    event_codes: tuple[tuple[str, str], ...] = ()
    # GB/T 35965.1 identifiers name the issuer: 6-digit division code + 3-digit organisation
    issuer_region: str = ""
    issuer_org: str = ""
    event_type: str = ""  # GB/T 35561 emergency classification code, when known

    @property
    def key(self) -> str:
        """Sender-scoped identity used to resolve CAP ``references``."""
        return f"{self.sender},{self.identifier}"

    def geocode_values(self) -> frozenset[str]:
        return frozenset(v for a in self.areas for _, v in a.geocodes)


@dataclass(frozen=True)
class Observation:
    """One reading of one quantity at one station (river stage, rainfall, a sensor).

    ``unit`` is as the source states it, normalized to a short symbol where the
    parser knows it (``m``, ``m3/s``, ``mm``, ``ft``, ``ft3/s``).
    """

    station: str  # the source's own station id, prefixed by source: "usgs:01646500"
    quantity: str  # stage, discharge, rainfall, water_level, tilt, …
    value: float
    unit: str
    time: datetime
    station_name: str = ""
    region_code: str = ""  # GB/T 2260 code of the station's region, when known
    source: str = ""  # feed name


# A mailbox as a roster and the email channel accept it: one @, a dot in the domain,
# nothing that would split an address list. Deliverability is the server's to judge.
EMAIL_ADDRESS = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")


@dataclass(frozen=True)
class Responder:
    """A named responsible person 责任人 in one tier of the roster."""

    key: str  # the roster's own id for this person, stable across imports
    name: str
    tier: Tier
    region_code: str
    phones: tuple[str, ...]  # E.164, first is primary
    roles: tuple[str, ...] = ()
    language: str = "zh"
    superior: str | None = None  # key of the person one tier up, if any
    # (channel, id) pairs: the user id a chat bot @mentions (wecom, dingtalk, feishu,
    # slack), the private chat it writes to (telegram) or the mailbox (email); sorted.
    chat_ids: tuple[tuple[str, str], ...] = ()

    def chat_id(self, channel: str) -> str | None:
        """This person's id on ``channel``, if the roster gives one."""
        return dict(self.chat_ids).get(channel)


@dataclass(frozen=True)
class TierPolicy:
    """How long one tier has to confirm and what silence triggers, step by step.

    Every ``*_after_s`` counts from when the person was first asked; None means the
    step is not taken (``superior_after_s`` None: after the last reminder's interval,
    and not before the first call).
    Reminders are ``repeat_count`` SMS from the deadline on, ``repeat_interval_s``
    apart; voice calls (``voice_count`` of them, as far apart) start at
    ``voice_after_s``. ``muster_s`` turns the tier's call into a muster: persons
    (those with one of ``muster_roles``, or all when empty) must arrive by then.
    """

    ack_window_s: float
    repeat_count: int = 1
    repeat_interval_s: float = 300.0
    voice_after_s: float | None = None
    voice_count: int = 1
    superior_after_s: float | None = None
    duty_officer_after_s: float | None = None
    unreachable_after_s: float | None = None
    muster_s: float | None = None
    muster_roles: tuple[str, ...] = ()

    @property
    def superior_s(self) -> float:
        """When the superior is told, counted from the ask."""
        if self.superior_after_s is not None:
            return self.superior_after_s
        reminded = self.ack_window_s + self.repeat_count * self.repeat_interval_s
        return max(reminded, self.voice_after_s or 0.0)

    def musters(self, roles: tuple[str, ...]) -> bool:
        """Whether a person with ``roles`` is called to muster under this policy."""
        return self.muster_s is not None and (
            not self.muster_roles or bool(set(roles) & set(self.muster_roles))
        )


@dataclass(frozen=True)
class LevelPolicy:
    """Which tiers a level reaches and each tier's timing; frozen onto the incident."""

    tiers: dict[Tier, TierPolicy] = field(default_factory=dict)
    transfer: bool = False  # the level calls for transfer: asks carry 转移清单


@dataclass(frozen=True)
class Incident:
    """One response of the office to one hazard in one region."""

    id: int
    key: str  # dedup key: hazard + region
    hazard: str
    region_code: str
    level: Level
    status: str  # open | lifted
    opened_at: datetime
    headline: str
    policy: LevelPolicy
    drill: bool = False
    source: str = ""  # the feed or person that opened it


@dataclass(frozen=True)
class Delivery:
    """One person to reach for one incident, on one channel, answering by a deadline."""

    responder: Responder
    channel: str
    address: str
    tier: Tier
    deadline: datetime
    muster_deadline: datetime | None = None  # muster: arrive (到岗) by then
    level: Level | None = None  # the level asked under
    policy: TierPolicy | None = None  # the tier policy frozen onto the request


# Reply codes (回复编号): a person's requests are numbered from 11 (11, 12, …) so that a
# bare "1" — like "收到"/"ok" — never names one: it answers the only open request, and
# with several open the reply lists their codes. Two digits anyone can type on a
# feature phone. An ask shows "1" while it is the person's only open request.
FIRST_REPLY_CODE = 11
BARE_REPLY = "1"


def next_reply_code(taken: Iterable[str]) -> str:
    """The code a person's next request gets: above every code they have open (``taken``),
    11 when none — so code 11 always means "the only one open when it was asked"."""
    numbers = [int(c) for c in taken if c.isdigit()]
    return str(max([FIRST_REPLY_CODE - 1, *numbers]) + 1)


@dataclass(frozen=True)
class Request:
    """One 叫应 request: one person asked to confirm one incident by ``deadline``.

    ``status``: pending → delivered (the provider reported it delivered) →
    confirmed; or → escalated (the superior was told) → unreachable (the ladder
    gave up, or every address failed); a confirmation after ``deadline`` is late
    and still counts. ``superseded``: an upgrade asked again under the new level.
    ``reply_code`` is what the person texts back (11, 12, …: see ``FIRST_REPLY_CODE``).
    A muster request also waits for
    arrival (到岗) by ``muster_deadline``.
    """

    id: int
    incident_id: int
    responder_key: str
    tier: Tier
    reply_code: str
    status: str
    sent_at: datetime
    deadline: datetime
    confirmed_at: datetime | None = None
    escalated_at: datetime | None = None  # when the superior was told; kept after a late answer
    delivered_at: datetime | None = None
    unreachable_at: datetime | None = None
    level: Level | None = None  # the level it was asked under (None: rows before 0004)
    muster_deadline: datetime | None = None
    arrived_at: datetime | None = None

    @property
    def late(self) -> bool:
        return self.confirmed_at is not None and self.confirmed_at > self.deadline


@dataclass(frozen=True)
class Message:
    """A rendered message ready for a channel; ``key`` is its idempotency key."""

    key: str
    channel: str
    to: str
    body: str
    incident_id: int | None = None
    responder_key: str | None = None
    # For group bots: who to @mention (phones or platform user ids), one message per group.
    mentions: tuple[str, ...] = ()
    # The signed ack token of the request this message asks about: channels with a
    # button ("确认收到") put it in the button's callback instead of a link.
    ack_token: str | None = None
    # 0: a responsible person or an escalation; 1: public tip SMS, sent only when lane 0 is empty
    priority: int = 0
    # How long the provider may keep trying to deliver it (Twilio ValidityPeriod); None:
    # the channel's default. Set at sending time (warnbot/validity.py), not stored.
    validity_s: int | None = None


@dataclass(frozen=True)
class Receipt:
    """What a channel returns after the provider accepted a message."""

    provider_id: str
    status: str = "sent"


LADDER = ("repeat", "voice", "superior", "duty_officer", "unreachable")


@dataclass(frozen=True)
class Step:
    """One rung of the 叫应 ladder for one request; ``key`` makes it fire once.

    ``kind`` is one of ``LADDER``: ``repeat`` (ask the same person again by SMS,
    ``n``-th time), ``voice`` (call them, ``n``-th call), ``superior`` (tell
    ``target_key`` — or the duty officer when None — who is silent),
    ``duty_officer`` (tell the duty officer who is still silent), ``unreachable``
    (give up on the person and mark them so).
    """

    key: str
    kind: str
    incident_id: int
    request_id: int
    responder_key: str
    n: int = 0
    target_key: str | None = None


TIP_LANE = 1  # outbox priority: public tips wait until lane 0 (responders) is empty


@dataclass(frozen=True)
class TipBlast:
    """One incident's 提示短信 to a public audience: the same text to every number,
    in lane 1, keyed ``tip:<incident>:<number>`` so a repeated fan-out (after a crash,
    or a second region) queues nobody twice. The store fans it out in the database."""

    incident_id: int
    body: str
    channel: str
    priority: int = TIP_LANE

    @property
    def key_prefix(self) -> str:
        return f"tip:{self.incident_id}:"
