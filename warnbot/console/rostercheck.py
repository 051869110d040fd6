"""The rosters page's import check: the roster file read as ``warnbot roster check``
reads it (with the region tree), in a worker thread so the event loop never waits
on the disk, and kept until the file changes (size or modification time).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from warnbot.errors import ConfigError
from warnbot.regions import RegionTree
from warnbot.rosters import load as load_roster

Stamp = tuple[str, int, int]  # path, mtime_ns, size


@dataclass
class RosterCheck:
    """One per web application; ``problems`` is what the page shows."""

    _last: tuple[Stamp, list[str]] | None = field(default=None, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def problems(self, path: Path, default_region: str, tree: RegionTree | None) -> list[str]:
        """Every problem of the roster file as ``FILE:LINE: what``, FILE without the
        server's directories; an empty list when it imports cleanly."""
        async with self._lock:  # a burst of page loads reads the file once
            try:
                stat = await asyncio.to_thread(path.stat)
            except OSError as e:
                return [f"{path.name}: cannot read the roster: {e.strerror}"]
            stamp = (str(path), stat.st_mtime_ns, stat.st_size)
            if self._last is None or self._last[0] != stamp:
                found = await asyncio.to_thread(_check, path, default_region, tree)
                self._last = (stamp, found)
            return self._last[1]


def _check(path: Path, default_region: str, tree: RegionTree | None) -> list[str]:
    try:
        load_roster(path, default_region, tree)
    except ConfigError as e:
        return [p.replace(str(path), path.name, 1) for p in e.problems]
    return []
