"""Rosters of responsible persons (责任人), from the CSV or YAML an office keeps.

Every row is checked — phone numbers with ``phonenumbers`` (E.164, CN by
default), division codes, tiers, duplicates, superiors — and each problem is
reported as ``FILE:LINE: what is wrong`` with the file's own line number (the
CSV header is line 1). A roster with any error is rejected whole, never
half-applied. Headers may be Chinese or English.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import phonenumbers
import yaml

from warnbot import regions
from warnbot.errors import ConfigError
from warnbot.model import Responder, Tier

HEADERS = {
    "key": ("编号", "id", "key"),
    "name": ("姓名", "name"),
    "tier": ("层级", "tier"),
    "region_code": ("行政区划代码", "region_code", "region"),
    "phones": ("手机号码", "电话", "phones", "phone"),
    "roles": ("角色", "roles"),
    "language": ("语言", "language"),
    "superior": ("上级编号", "superior"),
}
TIERS = {
    Tier.CITY: ("市", "市级", "city"),
    Tier.COUNTY: ("县", "县级", "区", "县(区)", "county", "district"),
    Tier.TOWNSHIP: ("乡", "镇", "乡镇", "乡镇级", "街道", "township", "town"),
    Tier.VILLAGE: ("村", "村级", "社区", "village", "community"),
}
# Phones are often typed with spaces ("138 0013 8001"), so lists split on
# punctuation and line breaks only.
_SPLIT = re.compile(r"\s*[;；,，、/\n]+\s*")
Row = tuple[int, dict[str, Any]]  # (line number, fields by canonical name)


def load(path: Path, default_region: str = "CN") -> list[Responder]:
    """Read and validate a roster file; raises ConfigError listing every bad row."""
    rows = _read(path)
    problems: list[str] = []
    people: list[tuple[int, Responder]] = []
    for line, fields in rows:
        person, row_problems = _person(fields, default_region)
        problems += [f"{path}:{line}: {m}" for m in row_problems]
        if person is not None:
            people.append((line, person))
    problems += _cross_check(path, people)
    if problems:
        raise ConfigError(problems)
    return [p for _, p in people]


def _read(path: Path) -> list[Row]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{path}: cannot read roster: {e}"]) from None
    if path.suffix.lower() in (".yaml", ".yml"):
        return list(_yaml_rows(path, text))
    return list(_csv_rows(path, text))


def _csv_rows(path: Path, text: str) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(text))
    headers = next(reader, [])
    names = _canonical_headers(path, headers)
    while True:
        # csv's line_num is the LAST line of a record (a quoted field may span lines);
        # a row is reported at its first line, the one a spreadsheet user looks for.
        first_line = reader.line_num + 1
        values = next(reader, None)
        if values is None:
            return
        raw = dict(zip(headers, values, strict=False))
        fields = {names[k]: v.strip() for k, v in raw.items() if k in names}
        if any(fields.values()):
            yield first_line, fields


_ALIASES = {alias.casefold(): name for name, aliases in HEADERS.items() for alias in aliases}


def _canonical_headers(path: Path, headers: list[str]) -> dict[str, str]:
    names = {h: _ALIASES[h.strip().casefold()] for h in headers if h.strip().casefold() in _ALIASES}
    missing = [
        HEADERS[n][0]
        for n in ("key", "name", "tier", "region_code", "phones")
        if n not in names.values()
    ]
    if missing:
        raise ConfigError([f"{path}:1: missing column(s) {', '.join(missing)}"])
    return names


def _yaml_rows(path: Path, text: str) -> Iterator[Row]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError([f"{path}: not valid YAML: {e}"]) from None
    if not isinstance(data, list) or node is None:
        raise ConfigError([f"{path}:1: a YAML roster is a list of persons"])
    for item, item_node in zip(data, node.value, strict=True):
        line = item_node.start_mark.line + 1
        if not isinstance(item, Mapping):
            raise ConfigError([f"{path}:{line}: each person is a mapping of fields"])
        # The same Chinese/English names as a CSV header ("编号", "phone", …).
        yield (
            line,
            {
                _ALIASES[str(k).strip().casefold()]: v
                for k, v in item.items()
                if str(k).strip().casefold() in _ALIASES
            },
        )


def _person(f: dict[str, Any], default_region: str) -> tuple[Responder | None, list[str]]:
    """One row as a person, or None and what is wrong with it."""
    problems: list[str] = []
    key, name = str(f.get("key") or "").strip(), str(f.get("name") or "").strip()
    if not key:
        problems.append("编号/key is empty")
    if not name:
        problems.append("姓名/name is empty")
    tier = _tier(str(f.get("tier") or ""), problems)
    region = str(f.get("region_code") or "").strip()
    if not regions.is_code(region):
        problems.append(f"行政区划代码/region_code {region!r} is not a 6, 9 or 12 digit code")
    phones = _phones(f.get("phones"), default_region, problems)
    if problems or tier is None:
        return None, problems
    return Responder(
        key=key,
        name=name,
        tier=tier,
        region_code=region,
        phones=phones,
        roles=tuple(_items(f.get("roles"))),
        language=str(f.get("language") or "zh").strip() or "zh",
        superior=str(f.get("superior") or "").strip() or None,
    ), []


def _tier(text: str, problems: list[str]) -> Tier | None:
    value = text.strip().casefold()
    for tier, names in TIERS.items():
        if value in names:
            return tier
    problems.append(
        f"层级/tier {text!r} is not one of 市/县/乡镇/村 (city/county/township/village)"
    )
    return None


def _phones(value: Any, default_region: str, problems: list[str]) -> tuple[str, ...]:
    items = _items(value)
    if not items:
        problems.append("手机号码/phones is empty")
    return tuple(e for e in (_e164(p, default_region, problems) for p in items) if e)


def _e164(text: str, default_region: str, problems: list[str]) -> str | None:
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        problems.append(f"phone {text!r} is not a valid number")
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _items(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v for v in _SPLIT.split(str(value or "")) if v]


def _cross_check(path: Path, people: list[tuple[int, Responder]]) -> list[str]:
    """Problems between rows: duplicate persons or phones, unknown superiors."""
    problems: list[str] = []
    first_line: dict[str, int] = {}
    phone_owner: dict[str, str] = {}
    for line, p in people:
        if p.key in first_line:
            problems.append(
                f"{path}:{line}: duplicate person {p.key!r} (first on line {first_line[p.key]})"
            )
        first_line.setdefault(p.key, line)
        for phone in p.phones:
            owner = phone_owner.setdefault(phone, p.key)
            if owner != p.key:
                problems.append(f"{path}:{line}: phone {phone} already belongs to {owner!r}")
    problems += [
        f"{path}:{line}: superior {p.superior!r} is not in this roster"
        for line, p in people
        if p.superior and p.superior not in first_line
    ]
    return problems
