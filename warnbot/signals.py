"""The national warning-signal catalogue (气象灾害预警信号): which hazards exist, their
names in Chinese and English, and which colours each one has.

The catalogue is data (``warnbot/data/signals.toml``, with its sources), read once.
It lets rules say ``signal = "暴雨 橙色"`` and be checked at load — 霜冻 has no red
signal, so a rule asking for one is a mistake, not a rule that never fires — and it
lets a CAP event in either language be recognised as a hazard: "暴雨橙色预警信号" and
"Heavy Rain Warning" are both 暴雨.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from warnbot.ingest.cap import signal_colour
from warnbot.model import Colour

_COLOUR_NAMES = (
    {c.zh: c for c in Colour} | {c.zh[0]: c for c in Colour} | {c.value: c for c in Colour}
)
_SIGNAL_SUFFIX = re.compile(r"(预警信号|预警|信号|warning|signal)$", re.IGNORECASE)


@dataclass(frozen=True)
class Hazard:
    """One catalogue entry: ``name`` is the hazard as rules and incidents name it."""

    name: str
    zh: tuple[str, ...]  # other Chinese spellings (traditional characters, older names)
    en: tuple[str, ...]
    colours: tuple[Colour, ...]  # lowest first
    national: bool
    lookalikes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Signal:
    """A warning recognised as a catalogue hazard; ``colour`` only when the warning says it."""

    hazard: str
    colour: Colour | None


@cache
def catalogue() -> Mapping[str, Hazard]:
    """Every hazard by its name, read from the package data once."""
    text = (resources.files("warnbot") / "data" / "signals.toml").read_text(encoding="utf-8")
    entries = tomllib.loads(text)["hazard"]
    return {e["name"]: _hazard(e) for e in entries}


def _hazard(entry: dict[str, Any]) -> Hazard:
    return Hazard(
        name=entry["name"],
        zh=tuple(entry.get("zh", ())),
        en=tuple(entry.get("en", ())),
        colours=tuple(sorted((Colour(c) for c in entry["colours"]), key=list(Colour).index)),
        national=entry["national"],
        lookalikes=tuple(entry.get("lookalikes", ())),
    )


def colours(hazard: str) -> tuple[Colour, ...]:
    """The colours ``hazard`` (any of its names) has; KeyError if it is not in the catalogue."""
    return lookup(hazard).colours


def lookup(name: str) -> Hazard:
    """The hazard called ``name`` in Chinese or English, any case; KeyError if none."""
    key = name.strip().casefold()
    for hazard in catalogue().values():
        if key in (n.casefold() for n in _names(hazard)):
            return hazard
    raise KeyError(name)


def parse(text: str) -> tuple[Hazard, Colour | None]:
    """Read a rule's ``signal``: "暴雨 橙色", "暴雨橙色预警信号", "rainstorm orange" or "暴雨".

    Raises ValueError naming the problem, including a colour the hazard does not have.
    """
    words = _SIGNAL_SUFFIX.sub("", text.strip()).strip()
    name, colour = _split_colour(words)
    try:
        hazard = lookup(name)
    except KeyError:
        raise ValueError(f"{name!r} is not a hazard of the signal catalogue") from None
    if colour is not None:
        check_colour(hazard, colour)
    return hazard, colour


def check_colour(hazard: Hazard, colour: Colour) -> None:
    """ValueError when ``hazard`` has no signal of ``colour`` (霜冻 has no 红色)."""
    if colour not in hazard.colours:
        have = "、".join(c.zh for c in hazard.colours)
        raise ValueError(f"{hazard.name} has no {colour.zh} signal (its colours: {have})")


def _split_colour(words: str) -> tuple[str, Colour | None]:
    """Split a trailing colour word off: "暴雨 橙色" → ("暴雨", orange)."""
    for word, colour in sorted(_COLOUR_NAMES.items(), key=lambda kv: -len(kv[0])):
        if words.casefold().endswith(word) and len(words) > len(word):
            return words[: -len(word)].strip(), colour
    return words, None


def identify(event: str, headline: str = "") -> Signal | None:
    """The catalogue hazard a CAP event (else its headline) names, with the stated colour.

    The event is tried first, since it is the warning's own category; within one text
    the earliest, then the longest, name wins. A name inside a lookalike ("大风" in
    "雷雨大风") does not count. English names match whole words, plural allowed.
    The colour is what the text states (see ``ingest.cap.signal_colour``), never guessed.
    """
    for text in (event, headline):
        if hazard := _find(text):
            return Signal(hazard.name, signal_colour(event, headline, ()))
    return None


def _find(text: str) -> Hazard | None:
    hits = [
        (m.start(), -len(m.group()), hazard.name)
        for hazard in catalogue().values()
        for m in _pattern(hazard).finditer(text)
        if not _inside_lookalike(hazard, text, m.start(), m.end())
    ]
    return catalogue()[min(hits)[2]] if hits else None


def _inside_lookalike(hazard: Hazard, text: str, start: int, end: int) -> bool:
    folded = text.casefold()
    for look in hazard.lookalikes:
        for m in re.finditer(re.escape(look.casefold()), folded):
            if m.start() <= start and end <= m.end():
                return True
    return False


@cache
def _pattern(hazard: Hazard) -> re.Pattern[str]:
    """Chinese names as plain substrings; English as whole words, "sandstorm" = "sand storm"."""
    chinese = [re.escape(n) for n in (hazard.name, *hazard.zh)]
    english = [r"\b" + r"[\s-]*".join(map(re.escape, n.split())) + r"s?\b" for n in hazard.en]
    return re.compile("|".join(sorted(chinese + english, key=len, reverse=True)), re.IGNORECASE)


def _names(hazard: Hazard) -> tuple[str, ...]:
    return (hazard.name, *hazard.zh, *hazard.en, *(n.replace(" ", "") for n in hazard.en))
