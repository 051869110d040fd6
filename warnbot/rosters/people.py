"""Rosters of responsible persons (责任人), from the CSV, XLSX or YAML an office keeps.

Every row is checked — phone numbers with ``phonenumbers`` (E.164, CN by
default), division codes (and, given the region tree, that the region exists),
tiers, chat ids, duplicates, superiors — and each problem is reported as
``FILE:LINE: what is wrong`` with the file's own line number (the header is
line 1; ``FILE:SHEET!ROW`` in a workbook). A roster with any error is rejected
whole, never half-applied. Headers may be Chinese or English.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warnbot import regions
from warnbot.errors import ConfigError
from warnbot.model import EMAIL_ADDRESS, Responder, Tier
from warnbot.regions import RegionTree
from warnbot.rosters import phones as phone_numbers
from warnbot.rosters.tablefile import Row, read_table, text

# Chat ids by channel: the id a bot @mentions (WeCom/DingTalk userid, Feishu open_id,
# Slack member id), for Telegram the private chat a message is sent to, and for email
# the person's mailbox (the last resort of failover by default).
CHAT_COLUMNS = {
    "wecom": ("企业微信", "企业微信ID", "企业微信账号", "wecom"),
    "dingtalk": ("钉钉", "钉钉ID", "钉钉账号", "dingtalk"),
    "feishu": ("飞书", "飞书ID", "飞书账号", "feishu"),
    "telegram": ("Telegram", "telegram_id", "telegram"),
    "slack": ("Slack", "slack_id", "slack"),
    "email": ("邮箱", "电子邮箱", "email"),
}
HEADERS = {
    "key": ("编号", "工号", "id", "key"),
    "name": ("姓名", "name"),
    "tier": ("层级", "级别", "tier"),
    "region_code": ("行政区划代码", "区划代码", "region_code", "region"),
    "phones": ("手机号码", "电话", "联系电话", "phones", "phone"),
    "roles": ("角色", "责任人类别", "roles", "role"),
    "language": ("语言", "language"),
    "superior": ("上级编号", "superior"),
    "chat_ids": ("聊天账号", "chat_ids"),  # YAML: a mapping {telegram: "…", wecom: "…"}
    **CHAT_COLUMNS,
}
REQUIRED = ("key", "name", "tier", "region_code", "phones")
TIERS = {
    Tier.CITY: ("市", "市级", "city"),
    Tier.COUNTY: ("县", "县级", "区", "县(区)", "county", "district"),
    Tier.TOWNSHIP: ("乡", "镇", "乡镇", "乡镇级", "街道", "township", "town"),
    Tier.VILLAGE: ("村", "村级", "社区", "village", "community"),
}
# Phones are often typed with spaces ("138 0013 8001"), so lists split on
# punctuation and line breaks only.
_SPLIT = re.compile(r"\s*[;；,，、/\n]+\s*")
_CHAT_ID = {
    "telegram": re.compile(r"-?\d{1,20}"),  # a private chat's id is the user's numeric id
    "email": EMAIL_ADDRESS,
}
_ANY_CHAT_ID = re.compile(r"[\w.@:+-]{1,64}")


def file_sha256(path: Path, what: str = "roster") -> str:
    """The SHA-256 of a list file's bytes (a roster, a transfer list): the store
    remembers it, so a file is applied again only when its content changed.
    ConfigError, naming ``what`` could not be read, when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise ConfigError([f"{path}: cannot read {what}: {e.strerror or e}"]) from None


def load(path: Path, default_region: str = "CN", tree: RegionTree | None = None) -> list[Responder]:
    """Read and validate a roster file; raises ConfigError listing every bad row.

    With ``tree``, a person's region must be one of the tree's regions.
    """
    people: list[tuple[Row, Responder]] = []
    problems: list[str] = []
    for row in read_table(path, HEADERS, REQUIRED):
        person, row_problems = _person(row.fields, default_region, tree)
        problems += [f"{row.where}: {m}" for m in row_problems]
        if person is not None:
            people.append((row, person))
    problems += _cross_check(people)
    if problems:
        raise ConfigError(problems)
    return [p for _, p in people]


def _person(
    f: dict[str, Any], default_region: str, tree: RegionTree | None
) -> tuple[Responder | None, list[str]]:
    """One row as a person, or None and what is wrong with it."""
    problems: list[str] = []
    key, name = text(f.get("key")), text(f.get("name"))
    if not key:
        problems.append("编号/key is empty")
    if not name:
        problems.append("姓名/name is empty")
    tier = _tier(text(f.get("tier")), problems)
    region = _region(text(f.get("region_code")), tree, problems)
    phones = _phones(f.get("phones"), default_region, problems)
    chat_ids = _chat_ids(f, problems)
    if problems or tier is None:
        return None, problems
    return Responder(
        key=key,
        name=name,
        tier=tier,
        region_code=region,
        phones=phones,
        roles=tuple(items(f.get("roles"))),
        language=text(f.get("language")) or "zh",
        superior=text(f.get("superior")) or None,
        chat_ids=chat_ids,
    ), []


def _tier(value: str, problems: list[str]) -> Tier | None:
    folded = value.casefold()
    for tier, names in TIERS.items():
        if folded in names:
            return tier
    problems.append(
        f"层级/tier {value!r} is not one of 市/县/乡镇/村 (city/county/township/village)"
    )
    return None


def _region(code: str, tree: RegionTree | None, problems: list[str]) -> str:
    if not regions.is_code(code):
        problems.append(f"行政区划代码/region_code {code!r} is not a 6, 9 or 12 digit code")
    elif tree is not None and code not in tree:
        problems.append(f"行政区划代码/region_code {code!r} is not in the region tree")
    return code


def _phones(value: Any, default_region: str, problems: list[str]) -> tuple[str, ...]:
    found = items(value)
    if not found:
        problems.append("手机号码/phones is empty")
    numbers = [(p, phone_numbers.e164(p, default_region)) for p in found]
    problems += [f"phone {p!r} is not a valid number" for p, e in numbers if e is None]
    return tuple(e for _, e in numbers if e)


def _chat_ids(f: dict[str, Any], problems: list[str]) -> tuple[tuple[str, str], ...]:
    """Chat ids from per-channel columns, or a YAML ``chat_ids`` mapping."""
    given = f.get("chat_ids") or {}
    if not isinstance(given, Mapping):
        problems.append("chat_ids must map a channel to an id, e.g. {telegram: '123456'}")
        given = {}
    ids = {str(k).strip().casefold(): text(v) for k, v in given.items()}
    ids.update({c: text(f[c]) for c in CHAT_COLUMNS if text(f.get(c))})
    for channel, chat_id in sorted(ids.items()):
        if channel not in CHAT_COLUMNS:
            problems.append(f"chat id for unknown channel {channel!r}")
        elif not _CHAT_ID.get(channel, _ANY_CHAT_ID).fullmatch(chat_id):
            problems.append(f"{CHAT_COLUMNS[channel][0]}/{channel} id {chat_id!r} is not valid")
    return tuple(sorted((c, i) for c, i in ids.items() if i))


def items(value: Any) -> list[str]:
    """A list cell ("a、b;c") or a YAML list, as stripped non-empty strings."""
    if isinstance(value, list | tuple):
        return [text(v) for v in value if text(v)]
    return [v for v in _SPLIT.split(text(value)) if v]


def _cross_check(people: list[tuple[Row, Responder]]) -> list[str]:
    """Problems between rows: duplicate persons or phones, unknown superiors."""
    problems: list[str] = []
    first: dict[str, Row] = {}
    phone_owner: dict[str, str] = {}
    for row, p in people:
        if p.key in first:
            problems.append(
                f"{row.where}: duplicate person {p.key!r} (first on {first[p.key].label})"
            )
        first.setdefault(p.key, row)
        for phone in p.phones:
            owner = phone_owner.setdefault(phone, p.key)
            if owner != p.key:
                problems.append(f"{row.where}: phone {phone} already belongs to {owner!r}")
    problems += [
        f"{row.where}: superior {p.superior!r} is not in this roster"
        for row, p in people
        if p.superior and p.superior not in first
    ]
    return problems


def tier_counts(people: list[Responder]) -> dict[Tier, int]:
    """How many persons each tier has, top tier first (what an import prints)."""
    return {t: n for t in Tier if (n := sum(p.tier is t for p in people))}
