"""The lists the app keeps in memory and in step with the store: the roster (by
version, so every process reloads an import), transfer lists and the duty rota
(reloaded when their files change).
"""

from __future__ import annotations

from pathlib import Path

from warnbot import log, rosters, transfers
from warnbot.core import Core
from warnbot.errors import ConfigError
from warnbot.rosters.rota import load_rota
from warnbot.store.imports import Origin

_log = log.get(__name__)


class Rostering(Core):
    """Mixed into ``App``; see the module's notes."""

    async def seed_roster(self, path: Path) -> bool:
        """Apply the configured roster file when its content changed since it was last
        applied (or the store has none); True when it was. The store's roster is the
        one used: a ``warnbot roster import`` stays until the file changes. Rows are
        checked against the region tree; ConfigError lists every bad one."""
        sha256 = rosters.file_sha256(path)
        state = await self.store.roster_state()
        if state is not None and state.config_sha256 == sha256:
            return False
        people = rosters.load(path, self.settings.phone_region, self.regions)
        await self.store.import_roster(
            people, sha256, str(path), "config", self.clock(), config_sha256=sha256
        )
        _log.info("roster_applied", source=str(path), persons=len(people))
        return True

    async def seed_transfer_lists(self, path: Path) -> bool:
        """Apply the configured transfer-list file (转移清单) when its content changed since
        it was last applied (or none is stored); True when it was. As with the roster,
        the stored lists are the ones used: ``warnbot transfer import`` stays until the
        file changes. Entries are checked against the roster; ConfigError lists every
        bad one and changes nothing."""
        self.transfers_mtime = _mtime(path)
        sha256 = rosters.file_sha256(path, "transfer list")
        state = await self.store.transfer_lists_state()
        if state is not None and state.config_sha256 == sha256:
            return False
        entries = transfers.load(path, self.people.keys(), self.settings.phone_region)
        origin = Origin(sha256, str(path), "config", self.clock(), config_sha256=sha256)
        await self.store.import_transfer_lists(entries, origin)
        _log.info("transfer_lists_applied", source=str(path), entries=len(entries))
        return True

    async def _refresh_transfer_lists(self, path: Path) -> None:
        """A running process applies a changed transfer-list file (noticed by its mtime,
        then compared by content); a file with errors is logged and the stored lists
        kept, once per change of the file."""
        if _mtime(path) == self.transfers_mtime:
            return
        try:
            await self.seed_transfer_lists(path)
        except ConfigError as e:
            first = e.problems[0] if e.problems else ""
            _log.error(
                "transfer_lists_refused", source=str(path), problems=len(e.problems), first=first
            )

    async def reload_people(self) -> None:
        """Read the roster from the store, noting its version (read first: an import
        between the two reads only causes one more reload)."""
        state = await self.store.roster_state()
        self.people = {p.key: p for p in await self.store.roster()}
        self.roster_version = state.version if state else 0

    async def refresh(self) -> bool:
        """Reload the roster when another process imported a newer version (one small
        read), and the rota when its file changed (its mtime) or the roster did; apply
        the transfer-list file when it changed (the lists are read from the store at
        each ask, so applying is all a reload needs). Every process runs it
        periodically. True when the roster reloaded."""
        state = await self.store.roster_state()
        reloaded = (state.version if state else 0) != self.roster_version
        if reloaded:
            await self.reload_people()
            _log.info("roster_reloaded", version=self.roster_version, persons=len(self.people))
        path = self.settings.rota
        if path is not None and (reloaded or _mtime(path) != self.rota_mtime):
            self._reload_rota(path)
        if self.settings.transfer_lists is not None:
            await self._refresh_transfer_lists(self.settings.transfer_lists)
        return reloaded

    def load_rota(self, path: Path) -> None:
        """Read the duty rota against the roster; ConfigError lists every problem."""
        self.rota_mtime = _mtime(path)
        self.rota = load_rota(
            path, self.people.values(), self.settings.timezone, self.settings.phone_region
        )

    def _reload_rota(self, path: Path) -> None:
        """A running daemon keeps the rota it has when the new file is bad, and says so
        once per version of the file (``warnbot rota check`` shows every problem)."""
        try:
            self.load_rota(path)
        except ConfigError as e:
            first = e.problems[0] if e.problems else ""
            _log.error("rota_refused", source=str(path), problems=len(e.problems), first=first)
            return
        _log.info("rota_reloaded", source=str(path), shifts=len(self.rota.shifts))


def _mtime(path: Path) -> int | None:
    """The file's modification time in ns, None when it cannot be read."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None
