"""Parse one CAP 1.1/1.2 ``<alert>`` document into a :class:`~warnbot.model.Warning`.

Pure, no I/O. Feeds are untrusted: ``defusedxml`` parses with DTDs refused (CAP needs none;
a DTD is how entity bombs and XXE fetches get in). Every failure is a ParseError naming the
field or the place, so an operator can act on the feed-health page without the payload.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pyexpat import ErrorString, errors
from xml.etree.ElementTree import Element
from xml.etree.ElementTree import ParseError as XMLSyntaxError

import defusedxml.ElementTree as safe_xml
from defusedxml import DefusedXmlException, DTDForbidden

from warnbot.errors import ParseError
from warnbot.ingest.gbt35965 import with_national_codes
from warnbot.model import Area, Colour, Warning

_CAP = "urn:oasis:names:tc:emergency:cap:"
CAP_NAMESPACES = (_CAP + "1.2", _CAP + "1.1")

# CAP's closed vocabularies. Matched case-insensitively and returned in CAP's own spelling,
# because later stages branch on them (a mistyped status must not pass as "Actual").
_CHOICES = {
    "status": ("Actual", "Exercise", "System", "Test", "Draft"),
    "msgType": ("Alert", "Update", "Cancel", "Ack", "Error"),
    "scope": ("Public", "Restricted", "Private"),
    "urgency": ("Immediate", "Expected", "Future", "Past", "Unknown"),
    "severity": ("Extreme", "Severe", "Moderate", "Minor", "Unknown"),
    "certainty": ("Observed", "Likely", "Possible", "Unlikely", "Unknown", "Very Likely"),
}

# Expat decodes only UTF-8/16, ASCII and single-byte codecs; these multi-byte ones occur in
# mainland, Taiwan and Macao feeds and are transcoded to UTF-8 before parsing.
_MULTIBYTE_CODECS = frozenset({"gb2312", "gbk", "gb18030", "big5", "big5hkscs", "cp950"})
_INVALID_TOKEN = errors.codes[errors.XML_ERROR_INVALID_TOKEN]
_DECLARED_ENCODING = re.compile(
    rb"\A(?:\xef\xbb\xbf)?<\?xml[^>]*?\bencoding\s*=\s*[\"']([A-Za-z][\w.-]*)[\"']"
)

_COLOUR_WORDS = {
    "红色": Colour.RED, "紅色": Colour.RED, "red": Colour.RED,
    "橙色": Colour.ORANGE, "orange": Colour.ORANGE, "amber": Colour.ORANGE,
    "黄色": Colour.YELLOW, "黃色": Colour.YELLOW, "yellow": Colour.YELLOW,
    "蓝色": Colour.BLUE, "藍色": Colour.BLUE, "blue": Colour.BLUE,
}  # fmt: skip
_COLOUR_PARAMETERS = frozenset({"awareness_level", "alert_color"})  # MeteoAlarm, CAP-TWP
_ZH_COLOUR = re.compile("(红色|紅色|橙色|黄色|黃色|蓝色|藍色)")
_EN_COLOUR_LEVEL = re.compile(
    r"\b(red|orange|amber|yellow|blue)[\s-]+(?:warning|alert|signal|level|awareness)\b", re.I
)
_EN_COLOUR_LEADING = re.compile(r"\A(red|orange|amber|yellow|blue)\b(?!\s+flag\b)", re.I)
_EVENT_PATTERNS = (_ZH_COLOUR, _EN_COLOUR_LEVEL, _EN_COLOUR_LEADING)
_HEADLINE_PATTERNS = (_ZH_COLOUR, _EN_COLOUR_LEVEL)


@dataclass(frozen=True, slots=True)
class _Node:
    """A CAP element whose children are looked up in the document's own CAP namespace."""

    el: Element
    ns: str

    def all(self, name: str) -> list[_Node]:
        return [_Node(child, self.ns) for child in self.el.findall(f"{{{self.ns}}}{name}")]

    def text(self, name: str) -> str:
        """Stripped text of the first ``name`` child; "" when absent, as CAP treats empty."""
        child = self.el.find(f"{{{self.ns}}}{name}")
        return "" if child is None else "".join(child.itertext()).strip()

    def texts(self, name: str) -> tuple[str, ...]:
        """Non-empty texts of every ``name`` child, with inner whitespace runs collapsed."""
        found = (" ".join("".join(node.el.itertext()).split()) for node in self.all(name))
        return tuple(text for text in found if text)

    def pairs(self, name: str) -> tuple[tuple[str, str], ...]:
        """``(valueName, value)`` of every ``name`` child (geocode, parameter, eventCode)."""
        return tuple((node.text("valueName"), node.text("value")) for node in self.all(name))


def parse(data: bytes, *, language: str = "zh") -> Warning:
    """Parse one CAP ``<alert>`` document into a Warning, choosing one ``<info>`` by language.

    ``<info>`` fallback order (first hit wins, document order breaks ties):

    1. language equal to ``language``, ignoring case;
    2. same primary subtag (``zh`` matches ``zh-CN``, ``zh-TW``, ``zh-mo``; ``zh-CN`` matches
       ``zh-TW``), so a Chinese office gets Chinese before English;
    3. an ``<info>`` without ``<language>``;
    4. the first ``<info>``.

    An alert without ``<info>`` (a bare Cancel, say) is valid: the info fields stay empty.
    Times become timezone-aware UTC. A GB/T 35965.1 identifier and a GB/T 35561 event code
    fill issuer_region, issuer_org and event_type. Raises ParseError for anything else unusable.
    """
    alert = _alert_root(_load(data))
    warning = Warning(
        identifier=_required(alert, "identifier"),
        sender=_required(alert, "sender"),
        sent=_required_time(alert, "sent"),
        status=_choice(alert, "status"),
        msg_type=_choice(alert, "msgType"),
        scope=_choice(alert, "scope"),
        references=tuple(alert.text("references").split()),
    )
    infos = alert.all("info")
    chosen = best_language([info.text("language") for info in infos], language)
    return with_national_codes(warning if chosen is None else _with_info(warning, infos[chosen]))


def best_language(languages: Sequence[str], wanted: str) -> int | None:
    """Index of the ``<info>`` to use, in the fallback order :func:`parse` documents.

    None only when there is no ``<info>`` at all; otherwise some block is always chosen,
    since an untranslated warning is better than none.
    """
    if not languages:
        return None
    tags = [tag.strip().lower() for tag in languages]
    want = wanted.strip().lower()
    for accept in (
        lambda tag: tag == want,
        lambda tag: bool(tag) and _primary(tag) == _primary(want),
        lambda tag: not tag,
    ):
        for index, tag in enumerate(tags):
            if accept(tag):
                return index
    return 0


def signal_colour(
    event: str, headline: str, parameters: Iterable[tuple[str, str]]
) -> Colour | None:
    """The warning-signal colour the document itself states, else None (never guessed).

    A colour parameter wins (MeteoAlarm ``awareness_level`` "3; orange; Severe", CAP-TWP
    ``alert_color`` "黃色"), then the event, then the headline. In text the *last* colour
    named counts, since upgrades read "橙色预警信号升级为红色预警信号". Chinese colour words
    count anywhere; English ones only before warning/alert/signal/level, or leading the
    event ("Yellow Low Temperature/Ice"), so "Orange County", "Blue Mountains" and
    NWS "Red Flag Warning" (a fire-weather product) do not turn into signal colours.
    """
    for name, value in parameters:
        if name.strip().lower() in _COLOUR_PARAMETERS:
            for part in value.split(";"):
                if colour := _COLOUR_WORDS.get(part.strip().lower()):
                    return colour
    for text, patterns in ((event, _EVENT_PATTERNS), (headline, _HEADLINE_PATTERNS)):
        hits = [match for pattern in patterns for match in pattern.finditer(text)]
        if hits:
            return _COLOUR_WORDS[max(hits, key=lambda match: match.start())[1].lower()]
    return None


def _load(data: bytes) -> Element:
    """Parse bytes (so the declared encoding is honoured) into the root element."""
    try:
        root: Element = safe_xml.fromstring(_expat_readable(data), forbid_dtd=True)
    except XMLSyntaxError as exc:
        line, column = exc.position
        where = f"malformed XML at line {line}, column {column}"
        raise ParseError(f"{where}: {ErrorString(exc.code)}{_utf8_hint(exc, data)}") from exc
    except DefusedXmlException as exc:
        raise ParseError(_refusal(exc)) from exc
    except (ValueError, LookupError) as exc:  # e.g. an encoding expat cannot decode
        raise ParseError(f"unreadable XML: {exc}") from exc
    return root


def _expat_readable(data: bytes) -> bytes:
    """Re-encode GB2312/GBK/GB18030/Big5 documents as UTF-8, which expat cannot decode."""
    declared = _DECLARED_ENCODING.match(data)
    codec = _codec_name(declared[1]) if declared else ""
    if declared is None or codec not in _MULTIBYTE_CODECS:
        return data
    try:
        text = data[declared.end() :].decode(codec)
    except UnicodeDecodeError as exc:
        offset = declared.end() + exc.start
        message = f"bytes are not {codec} as declared: {exc.reason} at byte {offset}"
        raise ParseError(message) from exc
    utf8_declaration = data[: declared.start(1)] + b"UTF-8" + data[declared.end(1) : declared.end()]
    return utf8_declaration + text.encode()


def _utf8_hint(exc: XMLSyntaxError, data: bytes) -> str:
    """Feeds often send GBK or Latin-1 labelled UTF-8; expat then only says "invalid token"."""
    declared = _DECLARED_ENCODING.match(data)
    if exc.code != _INVALID_TOKEN or (declared and _codec_name(declared[1]) != "utf-8"):
        return ""
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as bad:
        return f" (byte {bad.start} is not UTF-8; is the feed really GBK or ISO-8859-1?)"
    return ""


def _codec_name(declared: bytes) -> str:
    """Python's canonical codec name for a declared encoding, or "" when unknown."""
    try:
        return codecs.lookup(declared.decode("ascii")).name
    except LookupError:
        return ""


def _refusal(exc: DefusedXmlException) -> str:
    """Name the refused construct, so an attack is told apart from a sloppy feed."""
    if isinstance(exc, DTDForbidden):
        where = f" (external DTD {exc.sysid!r})" if exc.sysid else ""
        return (
            f"refused: document declares a DTD <!DOCTYPE {exc.name}>{where}; CAP needs none, "
            "and DTDs carry entity bombs and external-entity (XXE) fetches"
        )
    return f"refused unsafe XML: {exc}"


def _alert_root(root: Element) -> _Node:
    """Check the root is a CAP 1.1/1.2 ``<alert>``; prefixes are resolved by the parser."""
    namespace, _, local = root.tag[1:].partition("}") if root.tag[0] == "{" else ("", "", root.tag)
    found = f"<{local}> in namespace {namespace!r}" if namespace else f"<{local}> with no namespace"
    if local != "alert":
        raise ParseError(f"root element is {found}; expected one CAP <alert> per document")
    if namespace not in CAP_NAMESPACES:
        expected = " or ".join(CAP_NAMESPACES)
        raise ParseError(f"root element is {found}; expected namespace {expected}")
    return _Node(root, namespace)


def _with_info(warning: Warning, info: _Node) -> Warning:
    """Copy the chosen ``<info>`` block's fields onto the alert-level warning."""
    parameters = info.pairs("parameter")
    event, headline = info.text("event"), info.text("headline")
    return replace(
        warning,
        language=info.text("language"),
        category=info.texts("category"),
        event=event,
        urgency=_choice(info, "urgency"),
        severity=_choice(info, "severity"),
        certainty=_choice(info, "certainty"),
        headline=headline,
        description=info.text("description"),
        instruction=info.text("instruction"),
        sender_name=info.text("senderName"),
        effective=_time(info, "effective"),
        onset=_time(info, "onset"),
        expires=_time(info, "expires"),
        colour=signal_colour(event, headline, parameters),
        areas=tuple(_area(area) for area in info.all("area")),
        parameters=parameters,
        event_codes=info.pairs("eventCode"),
    )


def _area(area: _Node) -> Area:
    """One ``<area>``; polygon/circle whitespace collapsed so each is one CAP string."""
    return Area(
        description=area.text("areaDesc"),
        geocodes=area.pairs("geocode"),
        polygons=area.texts("polygon"),
        circles=area.texts("circle"),
    )


def _required(node: _Node, name: str) -> str:
    """A CAP-required text field; missing and empty are the same failure."""
    value = node.text(name)
    if not value:
        raise ParseError(f"<{node.el.tag.rpartition('}')[2]}> lacks required <{name}>")
    return value


def _choice(node: _Node, name: str) -> str:
    """A required field from a CAP closed list, in CAP's spelling."""
    return _closed(name, _required(node, name))


def _closed(name: str, value: str) -> str:
    """``value`` in CAP's spelling of the closed list ``name``; shared with the other parsers."""
    for allowed in _CHOICES[name]:
        if value.lower() == allowed.lower():
            return allowed
    raise ParseError(f"<{name}> is {value!r}; CAP allows {', '.join(_CHOICES[name])}")


def _required_time(node: _Node, name: str) -> datetime:
    return _datetime(name, _required(node, name))


def _time(node: _Node, name: str) -> datetime | None:
    raw = node.text(name)
    return _datetime(name, raw) if raw else None


def _datetime(name: str, raw: str) -> datetime:
    """A CAP date-time as aware UTC; ``Z`` accepted, a missing offset refused."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ParseError(f"<{name}> is not a date-time: {raw!r}") from None
    if value.tzinfo is None:
        raise ParseError(f"<{name}> has no UTC offset: {raw!r} (CAP needs e.g. +08:00)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 1 at +08:00 or 9999 at -08:00 has no UTC equivalent
        raise ParseError(f"<{name}> is out of range in UTC: {raw!r}") from None


def _primary(tag: str) -> str:
    """Primary language subtag: ``zh`` of ``zh-CN`` (``zh_CN`` tolerated)."""
    return re.split(r"[-_]", tag, maxsplit=1)[0]
