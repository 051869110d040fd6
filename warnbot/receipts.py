"""Reports back (回执上报): what a person says they did, read into numbers. Pure.

A confirmation often carries a report — "1 已转移12户30人", "到岗",
"收到，已组织巡查3处", "moved 12 households 30 people". ``parse_report`` reads
the numbers an office sums and reports upward (households and people moved,
teams and staff out, patrols, on post) and always keeps the text verbatim: a
report the parser cannot read is still a report. It never raises.

Each clause (split at punctuation) is read on its own, so the verb of a clause
says what its numbers count: "转移5户12人，出动20人" moves 12 people and sends
20 staff. A report that says 累计 / 共计 / "in total" is a running total that
replaces the person's earlier figures; any other report adds to them.
``rollup`` sums per region and up the region tree, because each office
reports the figures of everything below it.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from warnbot import regions

COUNTS = ("households_moved", "people_moved", "teams_out", "staff_out", "patrols")

# Chinese numerals as offices type them ("转移十二户"); up to 9999 is plenty for one report.
_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4}
_DIGITS |= {"五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_NUM = r"(?<![\d.])(\d{1,6}|[零〇一二两三四五六七八九十百千]{1,8})"

_CLAUSE = re.compile(r"[,，。;；!！?？\n]+|、(?!\d)|(?<![nN][oO])\.(?=\s|$)")
_CODE = re.compile(r"^\s*(\d{1,3})(?=[\s,，.。:：;；、-]|$)")
_MOVE = re.compile(r"转移|撤离|撤出|安置|疏散|避险|moved|evacuat|relocat|transferr", re.I)
_OUT = re.compile(r"出动|派出|组织|调派|投入|dispatch|deploy|\bout\b|sent", re.I)
_PATROL_WORD = re.compile(r"巡查|巡逻|排查|patrol|inspect", re.I)
_ARRIVED = re.compile(r"到岗|到位|在岗|已到达|到达|抵达|arrived|on post|on duty|in position", re.I)
_TOTAL = re.compile(r"累计|共计|合计|总计|in total|cumulative|so far", re.I)
_ALL = re.compile(r"全部|全体|所有|all\b", re.I)

_HOUSEHOLDS = re.compile(_NUM + r"\s*(?:户|households?|homes?|families|family)", re.I)
_PEOPLE = re.compile(_NUM + r"\s*(?:人|名|口|people|persons?|residents?)", re.I)
_TEAMS = re.compile(_NUM + r"\s*(?:支|个)?\s*(?:队伍|小分队|抢险队|救援队|队|teams?|crews?)", re.I)
_TEAMS_AFTER = re.compile(r"(?:队伍|抢险队|救援队)\s*" + _NUM + r"\s*支")
_PATROLS = re.compile(_NUM + r"\s*(?:处|次|个点|点|趟|patrols?|sites?|points?|places?)", re.I)
_ENTRY = re.compile(r"(?:第\s*)?(\d{1,4})\s*号|(?:no\.?|#)\s*(\d{1,4})", re.I)


@dataclass(frozen=True)
class Report:
    """One report back, verbatim, with what could be read from it.

    A count is None when the report does not mention it. ``entries`` are the
    numbers of transfer-list entries reported moved ("已转移 3号"); ``all_moved``
    says the whole list was ("全部转移").
    """

    text: str
    code: str | None = None
    households_moved: int | None = None
    people_moved: int | None = None
    teams_out: int | None = None
    staff_out: int | None = None
    patrols: int | None = None
    arrived: bool = False
    cumulative: bool = False
    entries: tuple[str, ...] = ()
    all_moved: bool = False

    @property
    def parsed(self) -> bool:
        """True when anything beyond the verbatim text was read."""
        return self.arrived or self.all_moved or bool(self.entries) or any(self.counts().values())

    def counts(self) -> dict[str, int]:
        """The counts the report mentions."""
        return {n: v for n in COUNTS if (v := getattr(self, n)) is not None}


def parse_report(text: str) -> Report:
    """Read a report back; never raises, and ``text`` is kept exactly as given."""
    folded = unicodedata.normalize("NFKC", text)
    code_match = _CODE.match(folded)
    code, body = None, folded
    if code_match and not _counted_at_start(folded):
        code, body = str(int(code_match[1])), folded[code_match.end() :]
    found: dict[str, int] = {}
    entries: list[str] = []
    all_moved = False
    verb = ""
    for clause in (c for c in _CLAUSE.split(body) if c.strip()):
        verb = _verb(clause) or verb  # "转移3户，9人": the second clause still moves
        _read_clause(clause, verb, found)
        if verb == "move":
            entries += _entries(clause)
            all_moved = all_moved or bool(_ALL.search(clause))
    return Report(
        text=text,
        code=code,
        arrived=bool(_ARRIVED.search(body)),
        cumulative=bool(_TOTAL.search(body)),
        entries=tuple(dict.fromkeys(entries)),
        all_moved=all_moved,
        **found,
    )


def _counted_at_start(text: str) -> bool:
    """ "12 户30人" starts with a count, not a reply code."""
    stripped = text.lstrip()
    return any(p.match(stripped) for p in (_HOUSEHOLDS, _PEOPLE, _TEAMS, _PATROLS, _ENTRY))


def _verb(clause: str) -> str:
    """What the clause's numbers count: ``move``, ``out`` or "" (say nothing)."""
    if _MOVE.search(clause):
        return "move"
    if _OUT.search(clause) or _ARRIVED.search(clause):
        return "out"
    return "move" if _HOUSEHOLDS.search(clause) else ""


def _read_clause(clause: str, verb: str, found: dict[str, int]) -> None:
    """Add the clause's counts to ``found``; the verb says what people counts mean."""
    teams = _sum(_TEAMS, clause) + _sum(_TEAMS_AFTER, clause)
    if _HOUSEHOLDS.search(clause):
        _add(found, "households_moved", _sum(_HOUSEHOLDS, clause))
    if _PEOPLE.search(clause) and verb:  # a bare "30人" says nothing about what they did
        _add(found, "people_moved" if verb == "move" else "staff_out", _sum(_PEOPLE, clause))
    if _TEAMS.search(clause) or _TEAMS_AFTER.search(clause):
        _add(found, "teams_out", teams)
    if _PATROL_WORD.search(clause) and _PATROLS.search(clause):
        _add(found, "patrols", _sum(_PATROLS, clause))


def _entries(clause: str) -> list[str]:
    return [str(int(m[1] or m[2])) for m in _ENTRY.finditer(clause)]


def _sum(pattern: re.Pattern[str], clause: str) -> int:
    return sum(number(m[1]) for m in pattern.finditer(clause))


def _add(found: dict[str, int], name: str, value: int) -> None:
    found[name] = found.get(name, 0) + value


def number(text: str) -> int:
    """ASCII digits or a Chinese numeral ("十二", "三十", "一百零五") as an int."""
    if text.isascii():
        return int(text)
    total, current = 0, 0
    for ch in text:
        if ch in _DIGITS:
            current = _DIGITS[ch]
        elif ch in _UNITS:
            total += (current or 1) * _UNITS[ch]
            current = 0
    return total + current


# --- sums per person and per region ------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """Summed figures; ``on_post`` counts persons who reported arriving."""

    households_moved: int = 0
    people_moved: int = 0
    teams_out: int = 0
    staff_out: int = 0
    patrols: int = 0
    on_post: int = 0
    reports: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(*(a + b for a, b in zip(_values(self), _values(other), strict=True)))


def _values(t: Totals) -> tuple[int, ...]:
    return tuple(getattr(t, f.name) for f in dataclasses.fields(t))


@dataclass(frozen=True)
class Filed:
    """A stored report: who, where, when, and what it said."""

    responder_key: str
    region_code: str
    received_at: datetime
    report: Report
    id: int = 0
    incident_id: int = 0
    request_id: int | None = None
    tier: str = ""
    path: str = ""


def person_totals(filed: Iterable[Filed]) -> dict[str, tuple[str, Totals]]:
    """Per person, their region and figures: running totals (累计) replace what the
    person reported before, other reports add to it."""
    figures: dict[str, dict[str, int]] = defaultdict(dict)
    region: dict[str, str] = {}
    arrived: set[str] = set()
    count: dict[str, int] = defaultdict(int)
    for f in sorted(filed, key=lambda f: (f.received_at, f.id)):
        own = figures[f.responder_key]
        for name, value in f.report.counts().items():
            own[name] = value if f.report.cumulative else own.get(name, 0) + value
        region[f.responder_key] = f.region_code
        count[f.responder_key] += 1
        if f.report.arrived:
            arrived.add(f.responder_key)
    return {
        k: (region[k], Totals(**v, on_post=int(k in arrived), reports=count[k]))
        for k, v in figures.items()
    }


@dataclass(frozen=True)
class RegionTotals:
    """One region's own figures and those of everything inside it (``total``)."""

    code: str
    name: str
    own: Totals = field(default_factory=Totals)
    total: Totals = field(default_factory=Totals)


def rollup(
    filed: Iterable[Filed], tree: regions.RegionTree | None = None
) -> dict[str, RegionTotals]:
    """Per region code (canonical spelling): own figures and the sum of everything below.

    Without a tree, the regions above come from the codes themselves (449901001 →
    449901 → 449900 → 440000); with one, names come from it too.
    """
    own: dict[str, Totals] = defaultdict(Totals)
    for code, totals in person_totals(filed).values():
        own[_canonical(code)] += totals
    total: dict[str, Totals] = defaultdict(Totals)
    for code, totals in own.items():
        for above in [code, *_above(code)]:
            total[above] += totals
    return {
        code: RegionTotals(code, _name(tree, code), own.get(code, Totals()), total[code])
        for code in sorted(total)
    }


def _canonical(code: str) -> str:
    return regions.canonical(code) if regions.is_code(code) else code


def _above(code: str) -> list[str]:
    if not regions.is_code(code):
        return []
    p = regions.prefix(code)
    # a prefix shorter than a county's pads to its 6-digit code: 4499 → 449900
    return [p[:n].ljust(6, "0") for n in (9, 6, 4, 2) if n < len(p)]


def _name(tree: regions.RegionTree | None, code: str) -> str:
    if tree is None or code not in tree:
        return ""
    return tree.get(code).name


def totals_line(t: Totals) -> str:
    """One line for a board or an upward report, Chinese first."""
    return (
        f"转移 {t.households_moved} 户 {t.people_moved} 人 moved, "
        f"出动 {t.teams_out} 支队伍 {t.staff_out} 人 out, "
        f"巡查 {t.patrols} 处 patrols, 到岗 {t.on_post} 人 on post"
    )


_SHORT = {
    "households_moved": "转移{}户",
    "people_moved": "转移{}人",
    "teams_out": "出动{}支队伍",
    "staff_out": "出动{}人",
    "patrols": "巡查{}处",
}


def summary(report: Report) -> str:
    """What was read from one report, short enough to echo back in an SMS."""
    parts = [_SHORT[name].format(value) for name, value in report.counts().items()]
    if report.arrived:
        parts.append("到岗")
    if report.all_moved:
        parts.append("全部转移")
    elif report.entries:
        parts.append("已转移 " + "、".join(f"{e}号" for e in report.entries))
    return "，".join(parts)
