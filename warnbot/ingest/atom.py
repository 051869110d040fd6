"""Parse an Atom or RSS 2.0 index of CAP alerts into :class:`Entry` items.

Pure, no I/O: the poller fetches the index, keeps the entries whose ``id`` it has not seen,
and for each one uses :meth:`Entry.warning` when the index carries the CAP fields inline
(legacy NWS and MeteoAlarm Atom, with ``cap:`` elements) or fetches :attr:`Entry.link`
otherwise. XML is read by ``cap``'s loader, so DTDs are refused here as there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import NoReturn, TypedDict
from xml.etree.ElementTree import Element

from warnbot.errors import ParseError
from warnbot.ingest.cap import CAP_NAMESPACES, _closed, _datetime, _load, signal_colour
from warnbot.ingest.gbt35965 import with_national_codes
from warnbot.model import Area, Warning

ATOM = "http://www.w3.org/2005/Atom"
CAP_MIME = "application/cap+xml"
_PAIRED = frozenset({"geocode", "parameter", "eventCode"})
# An index is public by nature; legacy NWS entries state no scope.
_DEFAULT_SCOPE = "Public"

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Entry:
    """One index entry: where its CAP document is, and any CAP fields written inline.

    ``cap`` holds the inline single-valued ``cap:*`` fields as ``(local name, text)`` in
    document order; ``geocodes``, ``parameters``, ``event_codes`` and ``polygons`` the
    repeated ones.
    """

    id: str  # Atom <id> or RSS <guid>: the poller's key for "seen before"
    link: str = ""  # the CAP document: type application/cap+xml, else the alternate link
    title: str = ""
    summary: str = ""
    author: str = ""
    updated: datetime | None = None
    published: datetime | None = None
    cap: Pairs = ()
    geocodes: Pairs = ()
    parameters: Pairs = ()
    event_codes: Pairs = ()
    polygons: tuple[str, ...] = ()

    def field(self, name: str) -> str:
        """The inline ``cap:name`` text, "" when absent."""
        return next((text for key, text in self.cap if key == name), "")

    def warning(self) -> Warning | None:
        """A Warning from the inline CAP fields, or None when they are too few to act on.

        Acting needs at least event, status and message type; otherwise (WMO RSS gives only
        event, severity and expiry) the linked document must be fetched. Identifier, sender
        and sent fall back to the entry's id, author and published/updated time, which is
        what legacy NWS entries imply; scope defaults to Public. Raises ParseError when an
        inline field is malformed.
        """
        msg_type = self.field("msgType") or self.field("message_type")  # MeteoAlarm's spelling
        if not (self.field("event") and self.field("status") and msg_type):
            return None
        return with_national_codes(self._warning(msg_type))

    def _warning(self, msg_type: str) -> Warning:
        event, headline = self.field("event"), self.field("headline") or self.title
        return Warning(
            identifier=self.field("identifier") or self.id,
            sender=self.field("sender") or self.author or _missing(self, "sender"),
            sent=self._sent(),
            status=_closed("status", self.field("status")),
            msg_type=_closed("msgType", msg_type),
            scope=_closed("scope", self.field("scope") or _DEFAULT_SCOPE),
            references=tuple(self.field("references").split()),
            language=self.field("language"),
            event=event,
            category=tuple(text for key, text in self.cap if key == "category"),
            urgency=self._optional_choice("urgency"),
            severity=self._optional_choice("severity"),
            certainty=self._optional_choice("certainty"),
            headline=headline,
            description=self.field("description") or self.summary,
            instruction=self.field("instruction"),
            sender_name=self.field("senderName"),
            effective=self._time("effective"),
            onset=self._time("onset"),
            expires=self._time("expires"),
            colour=signal_colour(event, headline, self.parameters),
            areas=(Area(self.field("areaDesc"), self.geocodes, self.polygons),),
            parameters=self.parameters,
            event_codes=self.event_codes,
        )

    def _sent(self) -> datetime:
        if raw := self.field("sent"):
            return feed_time("sent", raw)
        return self.published or self.updated or _missing(self, "sent")

    def _optional_choice(self, name: str) -> str:
        value = self.field(name)
        return _closed(name, value) if value else ""

    def _time(self, name: str) -> datetime | None:
        raw = self.field(name)
        return feed_time(name, raw) if raw else None


def parse(data: bytes) -> list[Entry]:
    """Every entry of an Atom ``<feed>`` or RSS 2.0 ``<rss>``, in document order.

    An empty index is an empty list. Raises ParseError for malformed or hostile XML, another
    root element, an entry without an id, or a malformed entry time.
    """
    root = _load(data)
    if root.tag == f"{{{ATOM}}}feed":
        return [_atom_entry(n, el) for n, el in enumerate(root.findall(f"{{{ATOM}}}entry"))]
    if root.tag == "rss":
        return [_rss_item(n, el) for n, el in enumerate(root.findall("channel/item"))]
    raise ParseError(f"root element is <{_local(root.tag)}>; expected an Atom <feed> or RSS <rss>")


def feed_time(name: str, raw: str) -> datetime:
    """An index time as aware UTC: RFC 3339 (Atom, CAP) or RFC 822 (RSS, WMO's cap:expires)."""
    try:
        return _datetime(name, raw.strip())
    except ParseError as not_iso:
        moment = _rfc822(raw)
        if moment is None:
            raise not_iso from None
        return moment


def _rfc822(raw: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(raw)
        # "-0000" (UTC, local offset unknown) comes back naive
        return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _atom_entry(index: int, entry: Element) -> Entry:
    ident = _text(entry, f"{{{ATOM}}}id")
    if not ident:
        raise ParseError(f"entry {index} has no <id>")
    return Entry(
        id=ident,
        link=_atom_link(entry.findall(f"{{{ATOM}}}link")),
        title=_text(entry, f"{{{ATOM}}}title"),
        summary=_text(entry, f"{{{ATOM}}}summary"),
        author=_text(entry, f"{{{ATOM}}}author/{{{ATOM}}}name"),
        updated=_entry_time(index, entry, f"{{{ATOM}}}updated"),
        published=_entry_time(index, entry, f"{{{ATOM}}}published"),
        **_inline_cap(entry),
    )


def _atom_link(links: list[Element]) -> str:
    """The CAP link: typed application/cap+xml first, else rel="alternate" (the default rel)."""
    typed = [link for link in links if link.get("type", "").lower() == CAP_MIME]
    alternate = [link for link in links if link.get("rel", "alternate") == "alternate"]
    return next((href for link in typed + alternate if (href := link.get("href", "").strip())), "")


def _rss_item(index: int, item: Element) -> Entry:
    link = _rss_link(item)
    ident = _text(item, "guid") or link
    if not ident:
        raise ParseError(f"item {index} has neither <guid> nor <link>")
    return Entry(
        id=ident,
        link=link,
        title=_text(item, "title"),
        summary=_text(item, "description"),
        author=_text(item, "author"),
        published=_entry_time(index, item, "pubDate"),
        **_inline_cap(item),
    )


def _rss_link(item: Element) -> str:
    """A CAP ``<enclosure>`` first, then ``<link>`` (text, or href as some feeds write it)."""
    for enclosure in item.findall("enclosure"):
        if enclosure.get("type", "").lower() == CAP_MIME and enclosure.get("url", "").strip():
            return enclosure.get("url", "").strip()
    link = item.find("link")
    return "" if link is None else (_joined(link) or link.get("href", "").strip())


class _InlineCap(TypedDict):
    cap: Pairs
    geocodes: Pairs
    parameters: Pairs
    event_codes: Pairs
    polygons: tuple[str, ...]


def _inline_cap(entry: Element) -> _InlineCap:
    """The entry's ``cap:*`` children, in either CAP namespace, as Entry fields."""
    fields: list[tuple[str, str]] = []
    pairs: dict[str, list[tuple[str, str]]] = {name: [] for name in _PAIRED}
    polygons: list[str] = []
    for child in entry:
        namespace, local = _split(child.tag)
        if namespace not in CAP_NAMESPACES:
            continue
        if local in _PAIRED:
            pairs[local] += _pairs(child)
        elif local == "polygon":
            polygons += [polygon] if (polygon := " ".join(_joined(child).split())) else []
        else:
            fields.append((local, _joined(child)))
    geocodes = tuple((name, code) for name, value in pairs["geocode"] for code in value.split())
    return {
        "cap": tuple(fields),
        "geocodes": geocodes,
        "parameters": tuple(pairs["parameter"]),
        "event_codes": tuple(pairs["eventCode"]),
        "polygons": tuple(polygons),
    }


def _pairs(element: Element) -> list[tuple[str, str]]:
    """``valueName``/``value`` children paired in order, whatever their namespace.

    Legacy NWS packs several pairs into one ``cap:geocode`` and several codes, space
    separated, into one value (split by the caller); MeteoAlarm puts the children in the
    Atom namespace.
    """
    names = [_joined(c) for c in element if _split(c.tag)[1] == "valueName"]
    values = [_joined(c) for c in element if _split(c.tag)[1] == "value"]
    return list(zip(names, values, strict=False))


def _entry_time(index: int, entry: Element, path: str) -> datetime | None:
    raw = _text(entry, path)
    if not raw:
        return None
    try:
        return feed_time(_local(path), raw)
    except ParseError as exc:
        raise ParseError(f"entry {index}: {exc}") from None


def _text(element: Element, path: str) -> str:
    found = element.find(path)
    return "" if found is None else _joined(found)


def _joined(element: Element) -> str:
    return "".join(element.itertext()).strip()


def _split(tag: str) -> tuple[str, str]:
    """``(namespace, local name)`` of an ElementTree tag."""
    if tag[:1] == "{":
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _local(tag: str) -> str:
    return _split(tag)[1]


def _missing(entry: Entry, name: str) -> NoReturn:
    raise ParseError(f"entry {entry.id!r} has inline CAP but no {name} to stand for <{name}>")
