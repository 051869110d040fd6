"""Which feeds have gone silent: no good data for longer than they may be quiet.

A dead feed must never look like a quiet sky, so a feed with ``silent_after_s``
that has not succeeded for that long — or never, since warnbot started — is
reported to the duty officer once per silence (keyed by its last success).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from warnbot.settings import FeedSettings


@dataclass(frozen=True)
class Silence:
    feed: str
    since: datetime  # the last success, or warnbot's start when there was none
    silent_s: float
    last_error: str | None

    @property
    def episode(self) -> str:
        return self.since.isoformat()


def silent(
    feeds: Iterable[FeedSettings],
    health: Mapping[str, Mapping[str, Any]],
    started_at: datetime,
    now: datetime,
) -> list[Silence]:
    """The feeds silent past their limit at ``now``."""
    found = []
    for feed in feeds:
        row = health.get(feed.name, {})
        since = row.get("last_success") or started_at
        quiet_s = (now - since).total_seconds()
        if feed.silent_after_s is not None and quiet_s > feed.silent_after_s:
            found.append(Silence(feed.name, since, quiet_s, row.get("last_error")))
    return found
