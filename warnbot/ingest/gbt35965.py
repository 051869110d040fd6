"""China's national warning profile: GB/T 35965.1-2018 identifiers, GB/T 35561-2017 event codes.

Pure, no I/O. The national release system (12379) names each warning
``ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N``: the issuer's 6-digit GB/T 2260 division code, its 3-digit
organisation code (416 is the meteorological service in every sample seen), 3 internal and 2
extension digits, the entry time in Beijing time, and a sequence number. Reading the issuer
out of the identifier is how an office tells its own county's warnings from a neighbour's.

The emergency classification table (:data:`EVENT_TYPES`) is deliberately partial. Codes are
two digits for the category (11–14), a letter for the class, two digits for the type, e.g.
``11B03``. Here a whole category or class is padded with zeros (``11000``, ``11B00``); "11"
and "11B" are accepted too, since the standard's own spelling of those could not be checked.
Included:

* the four categories 11 自然灾害, 12 事故灾难, 13 公共卫生事件, 14 社会安全事件 — certain;
* class 11B 气象灾害 and its types 11B01–11B22. A weather API relaying 12379 data numbers
  暴雨, 高温 and 雷电 156110203, 156110209 and 156110214 (country 156, then 11, B as 02, the
  type), i.e. 11B03, 11B09 and 11B14; a second API lists the same types in the same order
  as 1001 台风 … 1022 干旱, which gives the rest. High confidence for 11B03/09/14, good but
  not checked against the text of the standard for the others.

Left out, because no source at hand confirmed their letters: the hydrological (水旱), seismic,
geological (地质), marine (海洋), biological and forest/grassland-fire classes. A well-formed
code not in the table is still carried onto ``Warning.event_type``; it only has no name here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

from warnbot.model import Warning

BEIJING = timezone(timedelta(hours=8), "UTC+08:00")  # no daylight saving since 1991

# The "_N" suffix is optional: the real CMA sample and 12379 relays write identifiers without it.
_IDENTIFIER = re.compile(r"(\d{6})(\d{3})(\d{3})(\d{2})_(\d{14})(?:_(\d{1,6}))?", re.ASCII)
_CODE = re.compile(r"(1[1-4])(?:(?:000)?|([A-Z])(\d{2})?)", re.ASCII)
_EVENT_CODE_VALUE = re.compile(r"1[1-4](?:000|[A-Z]\d{2})", re.ASCII)

EVENT_TYPES: dict[str, str] = {
    "11000": "自然灾害", "12000": "事故灾难", "13000": "公共卫生事件", "14000": "社会安全事件",
    "11B00": "气象灾害",
    "11B01": "台风", "11B02": "龙卷风", "11B03": "暴雨", "11B04": "暴雪", "11B05": "寒潮",
    "11B06": "大风", "11B07": "沙尘暴", "11B08": "低温冻害", "11B09": "高温", "11B10": "热浪",
    "11B11": "干热风", "11B12": "下击暴流", "11B13": "雪崩", "11B14": "雷电", "11B15": "冰雹",
    "11B16": "霜冻", "11B17": "大雾", "11B18": "低空风切变", "11B19": "霾", "11B20": "雷雨大风",
    "11B21": "道路结冰", "11B22": "干旱",
}  # fmt: skip
_BY_NAME = {name: code for code, name in EVENT_TYPES.items()}


@dataclass(frozen=True)
class Identifier:
    """The parts of a GB/T 35965.1 warning identifier."""

    issuer_region: str  # GB/T 2260 division code of the issuing body, e.g. "449901"
    issuer_org: str  # organisation code within that division, e.g. "416"
    internal: str
    extension: str
    entered_at: datetime  # aware; written in Beijing time, returned in UTC
    sequence: int | None  # None when the identifier carries no "_N" suffix


def parse_identifier(identifier: str) -> Identifier | None:
    """The identifier's parts, or None when it is not of the national form (a foreign feed).

    A well-shaped identifier whose time is not a calendar time (month 13) is None too: it is
    not a national identifier, whatever it looks like.
    """
    match = _IDENTIFIER.fullmatch(identifier.strip())
    if match is None:
        return None
    region, org, internal, extension, stamp, sequence = match.groups()
    try:
        entered = datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None
    seq = int(sequence) if sequence else None
    return Identifier(region, org, internal, extension, entered.astimezone(UTC), seq)


def event_type(code_or_name: str) -> tuple[str, str] | None:
    """``(code, 中文名)`` for a GB/T 35561 code ("11B03", "11b03", "11B", "11") or name ("暴雨").

    None when the table does not hold it; see the module docstring for what it holds.
    """
    text = code_or_name.strip()
    code = _canonical(text.upper())
    if code in EVENT_TYPES:
        return code, EVENT_TYPES[code]
    if text in _BY_NAME:
        return _BY_NAME[text], text
    return None


def event_code(event_codes: tuple[tuple[str, str], ...]) -> str:
    """The GB/T 35561 code among CAP ``<eventCode>`` pairs, or "".

    A value shaped like a code counts whatever its valueName (feeds spell "GB/T 35561"
    several ways); a Chinese name counts when the valueName cites 35561.
    """
    for name, value in event_codes:
        if _EVENT_CODE_VALUE.fullmatch(value.strip().upper()):
            return value.strip().upper()
        if "35561" in name and (known := event_type(value)):
            return known[0]
    return ""


def with_national_codes(warning: Warning) -> Warning:
    """The warning with issuer_region, issuer_org and event_type filled where the CAP says."""
    issuer = parse_identifier(warning.identifier)
    code = event_code(warning.event_codes)
    if issuer is None and not code:
        return warning
    return replace(
        warning,
        issuer_region=issuer.issuer_region if issuer else warning.issuer_region,
        issuer_org=issuer.issuer_org if issuer else warning.issuer_org,
        event_type=code or warning.event_type,
    )


def _canonical(text: str) -> str:
    """``11`` → ``11000``, ``11B`` → ``11B00``; anything else unchanged or ""."""
    match = _CODE.fullmatch(text)
    if match is None:
        return ""
    category, letter, number = match.groups()
    if letter is None:
        return f"{category}000"
    return f"{category}{letter}{number or '00'}"
