"""Public audiences 受众: residents' numbers by region, for public tip SMS 提示短信.

An audience file is a table (CSV/XLSX) of mobile numbers and the region each
resident opted in for. Every row is checked — a mobile number SMS can reach,
a division code the office knows — and a file with any bad row is refused
whole, every problem listed as ``FILE:LINE: what is wrong``. A number listed
twice is kept once (lists get merged by hand); its first row wins.

Tip SMS are never a 叫应 request: nobody is asked to confirm, nothing
escalates, and they travel in outbox lane 1, behind every responsible person.
Each ends with the opt-out hint carriers require ("回复TD退订"); a reply
``is_opt_out`` recognises removes the number from every audience.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from warnbot import regions
from warnbot.errors import ConfigError
from warnbot.model import Incident, TipBlast
from warnbot.regions import RegionTree
from warnbot.rosters import phones
from warnbot.rosters.tablefile import iter_table, text

HEADERS = {
    "phone": ("手机号码", "手机号", "电话", "phone", "mobile"),
    "region_code": ("行政区划代码", "区划代码", "region_code", "region"),
}
# Whole replies that mean 退订 (unsubscribe), compared case-folded, full-width folded,
# spaces and end punctuation dropped: "TD", "td", "ＴＤ", "退订。", "STOP".
OPT_OUT_WORDS = frozenset({"td", "t", "退订", "退定", "取消订阅", "stop", "unsubscribe"})
_END = " \t\r\n,，.。!！"


@dataclass
class AudienceFile:
    """A validated audience: E.164 number → canonical region code, in file order."""

    members: dict[str, str] = field(default_factory=dict)
    duplicates: int = 0  # rows whose number was already listed


def load_audience(
    path: Path, default_region: str = "CN", tree: RegionTree | None = None
) -> AudienceFile:
    """Read and validate an audience file; raises ConfigError listing every bad row.

    With ``tree``, each region must be in the tree or inside one of its regions. An
    unknown ``default_region`` is refused before any row is read.
    """
    if not phones.is_region(default_region):
        raise ConfigError([f"phone_region: unknown phone region {default_region!r} (e.g. CN, HK)"])
    audience, problems = AudienceFile(), []
    # A few hundred villages among 300,000 rows: each code is checked once.
    checked: dict[str, tuple[str, str | None]] = {}
    for row in iter_table(path, HEADERS, ("phone", "region_code")):
        raw_phone, raw_code = text(row.fields.get("phone")), text(row.fields.get("region_code"))
        number = phones.mobile(raw_phone, default_region)
        if raw_code not in checked:
            checked[raw_code] = _region(raw_code, tree)
        code, wrong = checked[raw_code]
        if number is None:
            problems.append(f"{row.where}: {raw_phone!r} is not a mobile number")
        if wrong:
            problems.append(f"{row.where}: {wrong}")
        elif number is not None:
            if number in audience.members:
                audience.duplicates += 1
            else:
                audience.members[number] = code
    if problems:
        raise ConfigError(problems)
    return audience


def _region(code: str, tree: RegionTree | None) -> tuple[str, str | None]:
    """The canonical code, or what is wrong with it."""
    if not regions.is_code(code):
        return code, f"行政区划代码/region_code {code!r} is not a 6, 9 or 12 digit code"
    if tree is not None and code not in tree and not tree.ancestors(code):
        return code, f"行政区划代码/region_code {code!r} is not in the region tree"
    return regions.canonical(code), None


def tip_blast(incident: Incident, body: str, channel: str) -> TipBlast | None:
    """The incident's tip blast; None for a drill, which never reaches the public."""
    if incident.drill:
        return None
    return TipBlast(incident.id, body, channel)


def is_opt_out(text: str) -> bool:
    """Whether a whole reply asks to stop public tips (退订): "TD", "退订", "STOP" …"""
    folded = unicodedata.normalize("NFKC", text).strip(_END).casefold().replace(" ", "")
    return folded in OPT_OUT_WORDS
