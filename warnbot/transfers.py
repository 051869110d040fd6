"""Transfer lists (转移清单): who each responsible person must move, and to where.

"四个一": one person, one route, one destination (安置点) per household or
vulnerable person. An office keeps these lists in spreadsheets; ``load`` reads
CSV, XLSX or YAML (the shared ``rosters.tablefile`` reader: Chinese or English
headers, a title row above them, size limits), checks every row and reports each
problem as ``FILE:LINE: what is wrong`` (``FILE:SHEET!ROW`` in a workbook); a list
with any error is refused whole. On levels that call for transfer a person's
message carries their list (``message_block``), and the board tracks each entry
until a report marks it moved. Pure, except ``load`` reading its file.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import phonenumbers

from warnbot import sms
from warnbot.errors import ConfigError
from warnbot.receipts import Report
from warnbot.render import Renderer
from warnbot.rosters import tablefile

HEADERS = {
    "responder_key": ("责任人编号", "责任人", "responder", "responder_key"),
    "no": ("序号", "编号", "no", "number"),
    "household": ("户主", "转移对象", "对象", "姓名", "household", "person", "name"),
    "people": ("人数", "people", "count"),
    "phone": ("联系电话", "电话", "手机号码", "phone"),
    "route": ("转移路线", "路线", "route"),
    "destination": ("安置点", "安置地点", "目的地", "destination", "shelter"),
    "notes": ("备注", "notes", "note"),
}
REQUIRED = ("responder_key", "household", "people", "route", "destination")


@dataclass(frozen=True)
class TransferEntry:
    """One household or person that ``responder_key`` must move, and how."""

    responder_key: str
    no: str  # the entry's number in that person's list: "已转移 3号"
    household: str
    people: int
    route: str
    destination: str
    phone: str | None = None
    notes: str = ""
    source: str = ""  # FILE:LINE it came from


# --- reading -----------------------------------------------------------------------------------


def load(
    path: Path, known: Collection[str] | None = None, default_region: str = "CN"
) -> list[TransferEntry]:
    """Read and check a transfer-list file; ConfigError lists every bad row.

    ``known`` are the roster's person keys: an entry for anyone else is an error.
    """
    rows = tablefile.read_table(path, HEADERS, REQUIRED)
    problems: list[str] = []
    entries: list[TransferEntry] = []
    numbering: dict[str, int] = {}
    for row in rows:
        entry, errors = _entry(row.fields, row.where, default_region, numbering)
        problems += [f"{row.where}: {e}" for e in errors]
        if entry is not None:
            entries.append(entry)
    problems += _cross_check(entries, known)
    if problems:
        raise ConfigError(problems)
    return entries


def _entry(
    f: dict[str, Any], source: str, default_region: str, numbering: dict[str, int]
) -> tuple[TransferEntry | None, list[str]]:
    """One row as an entry, or None and what is wrong with it."""
    text = {k: "" if v is None else str(v).strip() for k, v in f.items()}
    problems = [f"{HEADERS[n][0]}/{HEADERS[n][-1]} is empty" for n in REQUIRED if not text.get(n)]
    people = _people(text.get("people", ""), problems)
    phone = _phone(text.get("phone", ""), default_region, problems)
    if problems:
        return None, problems
    key = text["responder_key"]
    numbering[key] = numbering.get(key, 0) + 1
    no = text.get("no") or str(numbering[key])
    return TransferEntry(
        key,
        no,
        text["household"],
        people,
        text["route"],
        text["destination"],
        phone,
        text.get("notes", ""),
        source,
    ), []


def _people(text: str, problems: list[str]) -> int:
    if text and not (text.isascii() and text.isdigit() and int(text) > 0):
        problems.append(f"人数/people {text!r} is not a positive whole number")
        return 0
    return int(text) if text else 0


def _phone(text: str, default_region: str, problems: list[str]) -> str | None:
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        problems.append(f"电话/phone {text!r} is not a valid number")
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _cross_check(entries: list[TransferEntry], known: Collection[str] | None) -> list[str]:
    """Problems between rows: one number twice in a person's list, unknown persons."""
    problems: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    for e in entries:
        first = seen.setdefault((e.responder_key, e.no), e.source)
        if first != e.source:
            problems.append(
                f"{e.source}: entry {e.no} of {e.responder_key!r} is listed twice (first {first})"
            )
        if known is not None and e.responder_key not in known:
            problems.append(f"{e.source}: responder {e.responder_key!r} is not in the roster")
    return problems


# --- the message -------------------------------------------------------------------------------


def calls_for_transfer(policy: object) -> bool:
    """True when the level policy frozen onto an incident calls for transfer.

    Reads a ``transfer: bool`` flag of the policy (``LevelPolicy.transfer``, from
    ``[policy."Ⅱ"] transfer = true``); a policy without the flag never does.
    """
    return getattr(policy, "transfer", False) is True


@dataclass(frozen=True)
class Block:
    """The transfer part of a person's message: ``full`` lists every entry;
    ``short`` counts them and gives the link to the page with the list."""

    full: str
    short: str
    entries: int
    people: int


def block_context(entries: Sequence[TransferEntry], link: str) -> dict[str, Any]:
    """What the ``transfer`` templates receive."""
    return {
        "entries": list(entries),
        "households": len(entries),
        "people": sum(e.people for e in entries),
        "link": link,
    }


def render_block(
    renderer: Renderer,
    entries: Sequence[TransferEntry],
    language: str,
    link: str,
    channel: str = "",
) -> Block:
    """Both forms of a person's transfer block, from ``templates/transfer/<lang>/``
    (``full.j2``, ``short.j2``; a provider's own in ``transfer-<channel>/``)."""
    context = block_context(entries, link)
    return Block(
        renderer.render("transfer", "full", language, channel=channel, **context),
        renderer.render("transfer", "short", language, channel=channel, **context),
        len(entries),
        context["people"],
    )


def choose_block(body: str, block: Block, max_segments: int = 3) -> str:
    """The message with its transfer block: the whole list when the message stays
    within ``max_segments`` SMS parts, else the count and the link."""
    if not block.entries:
        return body
    whole = f"{body}\n{block.full}"
    return whole if sms.segments(whole) <= max_segments else f"{body}\n{block.short}"


# --- progress ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """An entry reported moved in one incident: by whom, how, when."""

    responder_key: str
    no: str
    by: str
    via: str  # report | duty_officer
    moved_at: datetime
    report_id: int | None = None


def marks_from_report(
    responder_key: str,
    own: Sequence[TransferEntry],
    report: Report,
    now: datetime,
    report_id: int | None = None,
) -> list[Mark]:
    """The entries of ``responder_key``'s own list that ``report`` says are moved.

    "已转移 3号" marks entry 3, "全部转移" the whole list; numbers not in the
    list are ignored (the verbatim report still shows them).
    """
    numbers = {e.no for e in own}
    if report.all_moved:
        chosen = sorted(numbers, key=entry_order)
    else:
        chosen = [n for n in report.entries if n in numbers]
    return [Mark(responder_key, n, responder_key, "report", now, report_id) for n in chosen]


def entry_order(no: str) -> tuple[int, str]:
    """Sort key of entry numbers: 2 before 10, numbers before anything else."""
    return (int(no), no) if no.isdigit() else (1 << 30, no)


@dataclass(frozen=True)
class EntryState:
    entry: TransferEntry
    mark: Mark | None

    @property
    def moved(self) -> bool:
        return self.mark is not None


@dataclass(frozen=True)
class PersonProgress:
    """One person's list in one incident: each entry, moved or not."""

    responder_key: str
    states: tuple[EntryState, ...]

    @property
    def moved(self) -> int:
        return sum(1 for s in self.states if s.moved)

    @property
    def remaining(self) -> int:
        return len(self.states) - self.moved

    @property
    def people_moved(self) -> int:
        return sum(s.entry.people for s in self.states if s.moved)

    @property
    def people_total(self) -> int:
        return sum(s.entry.people for s in self.states)


def progress(
    entries: Iterable[TransferEntry], marks: Iterable[Mark], people: Collection[str] | None = None
) -> list[PersonProgress]:
    """The board of transfer lists: per person (those in ``people`` when given), each
    entry in list order with its mark, people with unmoved entries first."""
    marked = {(m.responder_key, m.no): m for m in marks}
    by_person: dict[str, list[EntryState]] = {}
    for e in sorted(entries, key=lambda e: (e.responder_key, entry_order(e.no))):
        if people is None or e.responder_key in people:
            state = EntryState(e, marked.get((e.responder_key, e.no)))
            by_person.setdefault(e.responder_key, []).append(state)
    board = [PersonProgress(k, tuple(v)) for k, v in by_person.items()]
    return sorted(board, key=lambda p: (p.remaining == 0, p.responder_key))


def board_lines(board: Sequence[PersonProgress]) -> list[str]:
    """The transfer board as text, Chinese first: one line per person, then unmoved entries."""
    lines = []
    for p in board:
        lines.append(
            f"{p.responder_key}: 已转移 {p.moved}/{len(p.states)} 户 moved, "
            f"{p.people_moved}/{p.people_total} 人 people"
        )
        lines += [
            f"  {s.entry.no}号 {s.entry.household} {s.entry.people}人 → "
            f"{s.entry.destination} 未转移 not moved"
            for s in p.states
            if not s.moved
        ]
    return lines
