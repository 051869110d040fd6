"""Publish an incident as a CAP 1.2 document in China's national profile, GB/T 35965.1-2018.

Downstream systems (the 12379 release system, 应急广播/村村响 gateways, a neighbouring office)
take CAP, so every incident warnbot opens or a duty officer triggers can go out as one
``<alert>``; its upgrades, downgrades and lift follow as Update and Cancel documents, each
referencing the one before (:func:`follow`, :class:`CapChain`).

Confirmed of GB/T 35965.1-2018 (normative Annex A.1.1–A.1.4, from public excerpts of its text;
the standard itself was not at hand): identifier ``ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N``, 31
characters: 6-digit GB/T 2260 issuer division code, 3-digit organisation code (GB/T 4657),
unit ``000`` and extension ``00`` by default, the *entry time* in Beijing time, N = 0–9 for
documents one issuer enters in the same second; date-times carry Beijing's ``+08:00``;
``status`` uses CAP's codes. A live CMA county feed (``tests/data/samples/cap/cn_cma_…``)
shows the OASIS 1.2 namespace, OASIS severity words (red → ``Extreme``), category Met and
``sender,identifier,sent`` references; it writes its identifier without ``_N``, we follow the
standard.

Assumed, following plain OASIS CAP 1.2: urgency, certainty and responseType per level
(:data:`GRADING`); the parameter names (``应急响应级别``, and ``alert_color`` — CAP-TWP's name,
which ``warnbot.ingest.cap`` reads back); the geocode valueName ``行政区划代码`` (CMA writes
``CPEAS Geographic Code``); ``references`` naming only the previous document. The pre-standard
national interface's severity Red/Orange/Yellow/Blue is not CAP 1.2 and is not written.

Text XML 1.0 cannot carry (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF) raises
ValueError rather than being stripped: a warning's words are not ours to drop. CR and CRLF are
written as LF, which is what any XML parser reads them as.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import NamedTuple
from xml.etree.ElementTree import Element, SubElement, tostring

from warnbot.model import Incident, Level
from warnbot.regions import is_code

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
BEIJING = timezone(timedelta(hours=8), "北京时间")  # fixed: tz Asia/Shanghai has 1986–91 DST
NATIONAL_IDENTIFIER = re.compile(
    r"(?P<region>\d{6})(?P<org>\d{3})(?P<unit>\d{3})(?P<ext>\d{2})_(?P<entered>\d{14})_(?P<n>\d)",
    re.ASCII,
)
REGION_CODE = "行政区划代码"
RESPONSE_LEVEL = "应急响应级别"
COLOUR_PARAMETER = "alert_color"
MSG_TYPES = ("Alert", "Update", "Cancel")
STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TOKEN = re.compile(r"[^\s,<&]+")  # CAP 1.2 §3.2.1: no spaces, commas, '<' or '&'
_CAP_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d", re.ASCII)
_REQUIRED = frozenset({"event", "areaDesc", "valueName", "value"})  # the rest is checked first
_LANGUAGE = re.compile(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*")  # xs:language
_CATEGORIES = (("火山", "Geo"), ("地震", "Geo"), ("地质", "Geo"), ("滑坡", "Geo"),
               ("泥石流", "Geo"), ("崩塌", "Geo"), ("火", "Fire"))  # fmt: skip


class Grading(NamedTuple):
    """The CAP words for one response level."""

    severity: str
    urgency: str
    certainty: str
    response_type: str


# 特别严重/严重/较重/一般 (Ⅰ–Ⅳ) map one-to-one onto CAP's Extreme/Severe/Moderate/Minor, as
# CMA's feed does for red. Ⅰ–Ⅱ launch the plan now (Immediate, Execute); Ⅲ prepares, Ⅳ watches.
GRADING = {
    Level.I: Grading("Extreme", "Immediate", "Observed", "Execute"),
    Level.II: Grading("Severe", "Immediate", "Likely", "Execute"),
    Level.III: Grading("Moderate", "Expected", "Likely", "Prepare"),
    Level.IV: Grading("Minor", "Expected", "Possible", "Monitor"),
}


def grading(level: Level, msg_type: str) -> Grading:
    """A Cancel keeps the level's severity (receivers match on it) but is Past and AllClear."""
    if msg_type == "Cancel":
        return GRADING[level]._replace(urgency="Past", response_type="AllClear")
    return GRADING[level]


def category(hazard: str) -> str:
    """CAP category of a hazard name: Geo or Fire when it says so, else Met (weather, flood)."""
    return next((cat for word, cat in _CATEGORIES if word in hazard), "Met")


def cap_time(moment: datetime) -> str:
    """``moment`` in Beijing time as CAP writes it: whole seconds and ``+08:00``."""
    if moment.utcoffset() is None:
        raise ValueError(f"time must be timezone-aware: {moment!r}")
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def identifier(issuer_region: str, issuer_org: str, now: datetime, sequence: int) -> str:
    """The national identifier: issuer code, entry time in Beijing time, sequence 0–9."""
    _digits("issuer_region", issuer_region, 6)
    _digits("issuer_org", issuer_org, 3)
    if not 0 <= sequence <= 9:
        raise ValueError(f"sequence must be 0-9 (GB/T 35965.1 A.1.1), got {sequence}")
    stamp = re.sub("[^0-9]", "", cap_time(now)[:19])
    return f"{issuer_region}{issuer_org}00000_{stamp}_{sequence}"


def to_cap(
    incident: Incident,
    *,
    sender: str,
    issuer_region: str,
    issuer_org: str,
    sequence: int,
    msg_type: str,
    references: Sequence[str],
    now: datetime,
    language: str = "zh-CN",
    status: str = "Actual",
    area_polygons: Sequence[str] = (),
    contact: str = "",
    web: str = "",
    sender_name: str = "",
    area_desc: str = "",
    description: str = "",
    instruction: str = "",
) -> bytes:
    """One CAP 1.2 ``<alert>`` (UTF-8) for ``incident``; ValueError for anything CAP refuses.

    A drill always goes out as ``Exercise`` with note 【演练】, whatever ``status`` says.
    Empty ``sender_name``, ``area_desc``, ``description`` and ``instruction`` are filled
    from the sender and the incident.
    """
    _check(sender, msg_type, status, references, language)
    ident = identifier(issuer_region, issuer_org, now, sequence)
    alert = _alert(incident, ident, sender, now, status, msg_type, references)
    info = _info(alert, incident, msg_type, language, sender_name or sender)
    _add(info, "description", description or _description(incident, msg_type))
    _add(info, "instruction", instruction or _instruction(incident, msg_type))
    _add(info, "web", web)
    _add(info, "contact", contact)
    _pair(info, "parameter", RESPONSE_LEVEL, f"{incident.level.roman}级")
    _pair(info, "parameter", COLOUR_PARAMETER, incident.level.colour.zh)
    _area(info, incident, area_desc or incident.region_code, area_polygons)
    data: bytes = tostring(alert, "utf-8", xml_declaration=True, default_namespace=CAP_NS)
    return data


def _alert(
    incident: Incident,
    ident: str,
    sender: str,
    now: datetime,
    status: str,
    msg_type: str,
    references: Sequence[str],
) -> Element:
    """The ``<alert>`` element with its header; a drill is an ``Exercise`` noted 【演练】."""
    alert = _element(None, "alert")
    for tag, text in (
        ("identifier", ident),
        ("sender", sender),
        ("sent", cap_time(now)),
        ("status", "Exercise" if incident.drill else status),
        ("msgType", msg_type),
        ("scope", "Public"),
        ("note", "【演练】" if incident.drill else ""),
        ("references", " ".join(references)),
    ):
        _add(alert, tag, text)
    return alert


@dataclass(frozen=True)
class Issuer:
    """Who publishes; the fields are :func:`to_cap`'s keywords of the same names."""

    sender: str
    issuer_region: str  # 6-digit GB/T 2260 code
    issuer_org: str  # 3-digit organisation code
    sender_name: str = ""
    language: str = "zh-CN"
    contact: str = ""
    web: str = ""


@dataclass(frozen=True)
class Published:
    """One document written, with the ``sender,identifier,sent`` triple that later ones cite."""

    identifier: str
    sent: str
    msg_type: str
    reference: str
    xml: bytes


TRANSITION_MSG_TYPES = {"open": "Alert", "lift": "Cancel"} | dict.fromkeys(
    ("upgrade", "downgrade", "update"), "Update"
)


def follow(
    incident: Incident,
    transition: str,
    *,
    issuer: Issuer,
    previous: str | None,
    now: datetime,
    sequence: int = 0,
    area_polygons: Sequence[str] = (),
) -> Published:
    """The document for one lifecycle transition (open → Alert; upgrade, downgrade, update →
    Update; lift → Cancel), referencing ``previous``, the triple of the document before it.

    Stateless, so the store needs to keep only the last :attr:`Published.reference`.
    """
    msg_type = TRANSITION_MSG_TYPES.get(transition)
    if msg_type is None:
        raise ValueError(f"unknown transition {transition!r}")
    if (msg_type == "Alert") != (previous is None):
        raise ValueError(f"{transition!r} needs {'no' if previous else 'a'} previous document")
    refs = () if previous is None else (previous,)
    xml = to_cap(
        incident,
        **asdict(issuer),
        sequence=sequence,
        msg_type=msg_type,
        references=refs,
        now=now,
        area_polygons=area_polygons,
    )
    ident, sent = identifier(issuer.issuer_region, issuer.issuer_org, now, sequence), cap_time(now)
    return Published(ident, sent, msg_type, f"{issuer.sender},{ident},{sent}", xml)


@dataclass(frozen=True)
class CapChain:
    """The documents of one incident, oldest first; each call returns a longer chain."""

    issuer: Issuer
    documents: tuple[Published, ...] = ()

    def follow(
        self, incident: Incident, transition: str, *, now: datetime, sequence: int = 0
    ) -> CapChain:
        """Append the document for ``transition``; nothing may follow a Cancel."""
        last = self.documents[-1] if self.documents else None
        if last is not None and last.msg_type == "Cancel":
            raise ValueError(f"incident {incident.key} was lifted by {last.identifier}")
        previous = last.reference if last else None
        doc = follow(
            incident, transition, issuer=self.issuer, previous=previous, now=now, sequence=sequence
        )
        if any(d.identifier == doc.identifier for d in self.documents):
            raise ValueError(f"{doc.identifier} already published: use the next sequence")
        return replace(self, documents=(*self.documents, doc))


def _check(
    sender: str, msg_type: str, status: str, references: Sequence[str], language: str
) -> None:
    """Refuse the header values CAP 1.2 (and so every receiver) would refuse."""
    _token("sender", sender)
    if msg_type not in MSG_TYPES:
        raise ValueError(f"msg_type must be one of {', '.join(MSG_TYPES)}, got {msg_type!r}")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    if msg_type != "Alert" and not references:
        raise ValueError(f"a CAP {msg_type} must reference the document it follows")
    for ref in references:
        _reference(ref)
    if not _LANGUAGE.fullmatch(language):
        raise ValueError(f"language must be an RFC 3066 tag such as zh-CN, got {language!r}")


def _reference(ref: str) -> None:
    """A ``sender,identifier,sent`` triple, so receivers can follow the chain."""
    parts = ref.split(",")
    if len(parts) != 3 or not _CAP_TIME.fullmatch(parts[2]):
        raise ValueError(f"reference must be 'sender,identifier,sent', got {ref!r}")
    _token("reference sender", parts[0])
    _token("reference identifier", parts[1])


def _token(what: str, value: str) -> None:
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"{what} must be non-empty without spaces, ',', '<' or '&': {value!r}")


def _digits(what: str, value: str, n: int) -> None:
    if not (len(value) == n and value.isascii() and value.isdigit()):
        raise ValueError(f"{what} must be {n} ASCII digits, got {value!r}")


def _info(
    alert: Element, incident: Incident, msg_type: str, language: str, sender_name: str
) -> Element:
    """``<info>`` up to ``<headline>``, in the order the XSD requires."""
    info = _element(alert, "info")
    grade = grading(incident.level, msg_type)
    for tag, text in (
        ("language", language),
        ("category", category(incident.hazard)),
        ("event", incident.hazard),
        ("responseType", grade.response_type),
        ("urgency", grade.urgency),
        ("severity", grade.severity),
        ("certainty", grade.certainty),
        ("senderName", sender_name),
        ("headline", incident.headline),
    ):
        _add(info, tag, text)
    return info


def _area(info: Element, incident: Incident, desc: str, polygons: Sequence[str]) -> None:
    if not is_code(incident.region_code):
        raise ValueError(f"region_code is not a GB/T 2260 code: {incident.region_code!r}")
    area = _element(info, "area")
    _add(area, "areaDesc", desc)
    for polygon in polygons:
        _add(area, "polygon", _polygon(polygon))
    _pair(area, "geocode", REGION_CODE, incident.region_code)


def _polygon(text: str) -> str:
    """CAP 1.2 §3.2.5: four or more ``lat,lon`` WGS 84 pairs, the first repeated last."""
    pairs = _xml_text("polygon", text).split()
    if len(pairs) < 4 or pairs[0] != pairs[-1] or not all(map(_is_point, pairs)):
        raise ValueError(f"polygon must be 4+ 'lat,lon' pairs, closed: {text[:80]!r}")
    return " ".join(pairs)


def _is_point(pair: str) -> bool:
    lat, _, lon = pair.partition(",")
    try:
        return abs(float(lat)) <= 90 and abs(float(lon)) <= 180
    except ValueError:
        return False


def _description(incident: Incident, msg_type: str) -> str:
    level = f"{incident.hazard}{incident.level.roman}级应急响应"
    text = {"Alert": f"启动{level}", "Update": f"调整为{level}", "Cancel": f"解除{level}"}
    return ("【演练】" if incident.drill else "") + text[msg_type] + "。"


def _instruction(incident: Incident, msg_type: str) -> str:
    if msg_type == "Cancel":
        return "各级责任人按预案做好响应解除后的工作。"
    return f"各级责任人按{incident.level.roman}级应急响应要求到岗履职，收到请回复确认。"


def _element(parent: Element | None, tag: str) -> Element:
    name = f"{{{CAP_NS}}}{tag}"
    return Element(name) if parent is None else SubElement(parent, name)


def _add(parent: Element, tag: str, text: str) -> None:
    """Write ``<tag>`` when there is text (CAP reads an empty element as absent); refuse an
    empty one that CAP requires, since receivers would reject the whole document."""
    if text:
        _element(parent, tag).text = _xml_text(tag, text)
    elif tag in _REQUIRED:
        raise ValueError(f"<{tag}> is required by CAP 1.2 and must not be empty")


def _pair(parent: Element, tag: str, name: str, value: str) -> None:
    """A ``<parameter>`` or ``<geocode>`` with its valueName and value."""
    pair = _element(parent, tag)
    _add(pair, "valueName", name)
    _add(pair, "value", value)


def _xml_text(tag: str, text: str) -> str:
    """Refuse what XML 1.0 cannot carry; write CR and CRLF as LF (what parsers read)."""
    if bad := _NOT_XML.search(text):
        raise ValueError(f"<{tag}> cannot carry U+{ord(bad[0]):04X}: XML 1.0 forbids it")
    return text.replace("\r\n", "\n").replace("\r", "\n")
