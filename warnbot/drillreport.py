"""The drill report (演练报告): who confirmed, how fast, who stayed silent. Pure.

Built from what the store already holds for an incident — its requests, the
persons asked, the ladder steps that fired and the addresses that failed —
per person (time to confirm; confirmed / late / silent / unreachable; the
reminders, calls, reports to the superior and the duty officer, and the mark
unreachable their silence caused, one column each) and per tier (counts, median
and slowest time to confirm, escalations by kind). After an upgrade each person
counts once, by their current request; one the new level no longer reaches and
who had not answered (told of the upgrade, not asked) keeps a row marked 不再需要
(``board.NO_LONGER_ASKED``), in no outcome column and no total. It renders as
CSV (one row per person, or one per tier) and as an HTML page, Chinese first.
Used for drills, it works as well for any incident.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from warnbot import board, csvcells
from warnbot.model import Incident, Request, Responder, Tier
from warnbot.resources import bundled

OUTCOMES = ("confirmed", "late", "silent", "unreachable", "pending")
OUTCOME_ZH = {
    "confirmed": "按时确认",
    "late": "迟到确认",
    "silent": "未应答",
    "unreachable": "无法联系",
    "pending": "待确认",
    board.NO_LONGER_ASKED: "不再需要",  # a row of its own, in no column and no total
}
# The ladder's steps (model.LADDER, then a muster's), each with its column in the CSV
# and the page.
KINDS = ("repeat", "voice", "superior", "duty_officer", "unreachable", "muster")
STEP_ZH = {
    "repeat": "重复提醒",
    "voice": "语音外呼",
    "superior": "上报上级",
    "duty_officer": "上报值班员",
    "unreachable": "标记无法联系",
    "muster": "集结超时上报",
}
STEP_EN = {
    "repeat": "reminders",
    "voice": "voice calls",
    "superior": "superior told",
    "duty_officer": "duty officer told",
    "unreachable": "marked unreachable",
    "muster": "late to muster, told",
}


@dataclass(frozen=True)
class Step:
    """A fired ladder step as the report needs it (``FiredStep`` from the store fits)."""

    key: str
    kind: str
    fired_at: datetime
    request_id: int | None


@dataclass(frozen=True)
class PersonRow:
    """One person asked: their answer and the escalations their silence caused."""

    tier: Tier
    responder_key: str
    name: str
    region_code: str
    sent_at: datetime
    deadline: datetime
    confirmed_at: datetime | None
    outcome: str
    escalations: Mapping[str, int]  # kind → how many fired for this person

    @property
    def confirm_s(self) -> float | None:
        """Seconds from the request to the answer, None without one."""
        if self.confirmed_at is None:
            return None
        return (self.confirmed_at - self.sent_at).total_seconds()

    @property
    def escalated(self) -> int:
        return sum(self.escalations.values())


@dataclass(frozen=True)
class TierRow:
    """One tier's summary; ``tier`` None is the whole incident."""

    tier: Tier | None
    total: int
    counts: Mapping[str, int]  # outcome → persons
    median_confirm_s: float | None
    max_confirm_s: float | None
    escalations: Mapping[str, int]  # kind → steps fired

    @property
    def answered(self) -> int:
        return self.counts["confirmed"] + self.counts["late"]

    @property
    def rate(self) -> float:
        """Share of persons who answered, late answers included."""
        return self.answered / self.total if self.total else 0.0


@dataclass(frozen=True)
class DrillReport:
    incident: Incident
    at: datetime
    people: tuple[PersonRow, ...]
    tiers: tuple[TierRow, ...]
    total: TierRow | None
    other_steps: Mapping[str, int] = field(default_factory=dict)  # steps naming no request


def unreachable_keys(
    people: Mapping[str, Responder], failures: Mapping[str, Collection[str]]
) -> frozenset[str]:
    """Persons every one of whose phones failed permanently."""
    return frozenset(
        k for k, p in people.items() if p.phones and set(p.phones) <= set(failures.get(k, ()))
    )


def build(
    incident: Incident,
    requests: Iterable[Request],
    people: Mapping[str, Responder],
    steps: Iterable[Step | Any],
    now: datetime,
    unreachable: Collection[str] = frozenset(),
) -> DrillReport:
    """The report at ``now``: an open window counts as pending, a passed one as silent.

    Each person counts once, by their current request (after an upgrade asked
    again, the new one); the steps fired for their earlier requests count with
    it. A request whose status says ``unreachable``, or a person in
    ``unreachable``, is unreachable unless they answered after all.
    """
    every = list(requests)
    owner = {r.id: r.responder_key for r in every}
    reqs = sorted(board.current(every), key=lambda r: (list(Tier).index(r.tier), r.responder_key))
    per_person: dict[str, Counter[str]] = {r.responder_key: Counter() for r in reqs}
    other: Counter[str] = Counter()
    for s in steps:
        key = owner.get(s.request_id) if s.request_id is not None else None
        (per_person[key] if key is not None else other)[s.kind] += 1
    rows = tuple(
        _person(r, people.get(r.responder_key), per_person[r.responder_key], now, unreachable)
        for r in reqs
    )
    present = [t for t in Tier if any(p.tier == t for p in rows)]
    tiers = tuple(_tier(t, [p for p in rows if p.tier == t]) for t in present)
    total = _tier(None, list(rows)) if rows else None
    return DrillReport(incident, now, rows, tiers, total, dict(other))


def _person(
    r: Request,
    person: Responder | None,
    fired: Counter[str],
    now: datetime,
    unreachable: Collection[str],
) -> PersonRow:
    outcome = board.state(r, now)
    gone = r.status == "unreachable" or r.responder_key in unreachable
    if r.confirmed_at is None and gone and not board.withdrawn(r):
        outcome = "unreachable"
    return PersonRow(
        r.tier,
        r.responder_key,
        person.name if person else "",
        person.region_code if person else "",
        r.sent_at,
        r.deadline,
        r.confirmed_at,
        outcome,
        dict(fired),
    )


def _tier(tier: Tier | None, rows: Sequence[PersonRow]) -> TierRow:
    times = [t for t in (p.confirm_s for p in rows) if t is not None]
    counts = Counter(p.outcome for p in rows)
    escalations: Counter[str] = Counter()
    for p in rows:
        escalations.update(p.escalations)
    return TierRow(
        tier,
        sum(1 for p in rows if p.outcome != board.NO_LONGER_ASKED),
        {o: counts.get(o, 0) for o in OUTCOMES},
        statistics.median(times) if times else None,
        max(times) if times else None,
        dict(escalations),
    )


# --- CSV ---------------------------------------------------------------------------------------

KIND_HEADER = tuple(f"{STEP_ZH[k]} {STEP_EN[k]}" for k in KINDS)
PERSON_HEADER = (
    "层级 tier",
    "编号 key",
    "姓名 name",
    "行政区划 region",
    "发出 sent",
    "时限 deadline",
    "确认 confirmed at",
    "确认用时(秒) seconds to confirm",
    "结果 outcome",
    *KIND_HEADER,
    "升级合计 escalations",
)
TIER_HEADER = (
    "层级 tier",
    "人数 total",
    *(f"{OUTCOME_ZH[o]} {o}" for o in OUTCOMES),
    "应答率 answered %",
    "中位用时(秒) median s",
    "最长用时(秒) max s",
    *KIND_HEADER,
    "升级合计 escalations",
)


def people_csv(report: DrillReport) -> str:
    """One row per person asked, the header in Chinese and English; names and other
    text kept from running as spreadsheet formulas (``csvcells``)."""
    rows = (
        [
            p.tier.value,
            p.responder_key,
            p.name,
            p.region_code,
            p.sent_at.isoformat(),
            p.deadline.isoformat(),
            p.confirmed_at.isoformat() if p.confirmed_at else "",
            _seconds(p.confirm_s),
            p.outcome,
            *(p.escalations.get(k, 0) for k in KINDS),
            p.escalated,
        ]
        for p in report.people
    )
    return csvcells.table(PERSON_HEADER, rows, lineterminator="\n")


def tiers_csv(report: DrillReport) -> str:
    """One row per tier, then the whole incident (``all``)."""
    rows = (
        [
            t.tier.value if t.tier else "all",
            t.total,
            *(t.counts[o] for o in OUTCOMES),
            f"{100 * t.rate:.1f}",
            _seconds(t.median_confirm_s),
            _seconds(t.max_confirm_s),
            *(t.escalations.get(k, 0) for k in KINDS),
            sum(t.escalations.values()),
        ]
        for t in [*report.tiers, *([report.total] if report.total else [])]
    )
    return csvcells.table(TIER_HEADER, rows, lineterminator="\n")


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


# --- HTML --------------------------------------------------------------------------------------


def html(report: DrillReport, tz: tzinfo = UTC, templates_dir: Any = None) -> str:
    """The report as one HTML page (templates/report/drill.html.j2), escaped throughout."""
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(templates_dir or bundled("templates")),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = lambda t: "" if t is None else t.astimezone(tz).strftime("%m-%d %H:%M:%S")
    env.filters["duration"] = duration
    return env.get_template("report/drill.html.j2").render(
        report=report,
        tier_rows=[*report.tiers, *([report.total] if report.total else [])],
        outcomes=OUTCOMES,
        outcome_zh=OUTCOME_ZH,
        step_zh=STEP_ZH,
        step_en=STEP_EN,
        kinds=KINDS,
        tz=str(tz),
    )


def duration(seconds: float | None) -> str:
    """``3分05秒`` style, for people reading the page."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}分{secs:02d}秒" if minutes else f"{secs}秒"
