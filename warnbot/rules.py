"""CAP match rules: which warnings concern which of our regions, at what level.

Rules are validated at load by pydantic (``settings.CapRule``); matching is pure.
"""

from __future__ import annotations

from warnbot import regions
from warnbot.model import Warning as CapWarning
from warnbot.settings import CapRule


def event_matches(rule: CapRule, w: CapWarning) -> bool:
    """Rule events are substrings of the CAP event or headline, any language."""
    text = f"{w.event} {w.headline}".casefold()
    return any(e.casefold() in text for e in rule.events)


def matched_regions(rule: CapRule, w: CapWarning) -> list[str]:
    """The warning's division codes that fall in the rule's regions, or [] if no match."""
    if not event_matches(rule, w):
        return []
    if rule.colours and w.colour not in rule.colours:
        return []
    if rule.severities and w.severity not in rule.severities:
        return []
    codes = {c for c in w.geocode_values() if regions.is_code(c)}
    return sorted(c for c in codes if any(regions.contains(r, c) for r in rule.region_codes))
