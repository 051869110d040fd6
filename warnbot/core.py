"""What every part of the running app shares: its state (settings, store, channels,
the roster in memory, the clock) and the small helpers every stage uses — rendering
an SMS for a person, signed tokens and links, who the duty officers are and
alerting them. ``App`` (``warnbot.app``) is this plus the parts in ``asking``,
``answers``, ``steps``, ``sending`` and ``rostering``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from warnbot import drills, dutyalerts, links
from warnbot.channels import Channel
from warnbot.model import Incident, Message, Responder
from warnbot.plan import duty_officers
from warnbot.regions import RegionTree
from warnbot.render import Renderer
from warnbot.rosters.rota import DutyRota, OnShift, duty_officers_at, on_shift
from warnbot.settings import Settings
from warnbot.store import Store

Observer = Callable[[str, dict[str, Any]], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Core:
    """The app's state and shared helpers; see the module's notes."""

    settings: Settings
    store: Store
    renderer: Renderer
    channels: dict[str, Channel]
    clock: Callable[[], datetime] = utcnow
    observers: list[Observer] = field(default_factory=list)
    public_url: str = ""
    link_secret: str = ""
    people: dict[str, Responder] = field(default_factory=dict)
    started_at: datetime = field(default_factory=utcnow)
    regions: RegionTree | None = None
    rota: DutyRota = field(default_factory=DutyRota)
    roster_version: int = 0  # the stored roster's version in ``people``
    rota_mtime: int | None = None  # the rota file's st_mtime_ns when it was read
    transfers_mtime: int | None = None  # the transfer-list file's, when last compared
    # Readings stored whose evaluation has not finished (it failed, or this process
    # just took the lease from one that may have died mid-way): the resume job
    # evaluates the stored readings again.
    readings_unsettled: bool = False

    def observe(self, event: str, **fields: Any) -> None:
        for observer in self.observers:
            observer(event, fields)

    async def alert_duty(self, incident_id: int, event: str, **context: Any) -> int:
        """Tell the duty officer on shift for the incident's region that it ``opened``,
        was ``upgraded`` or ``lifted`` (值班提示): one SMS each, keyed by incident and
        level, so telling twice sends once. Returns the alerts offered."""
        incident = await self.store.incident(incident_id)
        if incident is None:
            return 0
        messages = self._duty_alerts(incident, event, str(incident.level.value), **context)
        await self.store.enqueue(messages, self.clock())
        return len(messages)

    def _duty_alerts(
        self, incident: Incident, event: str, token: str, **context: Any
    ) -> list[Message]:
        return dutyalerts.messages(
            incident,
            event,
            token,
            self.duty_officers(incident),
            lambda o: self._sms(o, "duty_alert", incident, event=event, **context),
            self.settings.sms_channel,
        )

    def on_shift(self, region_code: str) -> OnShift:
        """Who is on duty for a region now: the duty officers (the rota's, walking up the
        region tree, else the roster's ``duty_officer`` persons) and the leaders on shift
        (带班领导, from the rota only)."""
        fallback = duty_officers(self.people.values())
        return on_shift(self.rota, region_code, self.clock(), self.people, fallback)

    def duty_officers(self, incident: Incident | None) -> list[Responder]:
        """Who hears of silence for ``incident``: the officer on shift for its region
        in the duty rota (walking up the region tree), else the roster's duty officers."""
        region = incident.region_code if incident else self._top_region()
        on_shift = duty_officers_at(self.rota, region, self.clock(), self.people) if region else []
        return on_shift or duty_officers(self.people.values())

    def _top_region(self) -> str:
        """The office's own region, for alerts of no incident (a silent feed)."""
        roots = self.regions.roots() if self.regions is not None else []
        return roots[0].code if roots else ""

    def token(self, request_id: int) -> str:
        return links.sign(request_id, self.link_secret)

    def link(self, request_id: int) -> str:
        return f"{self.public_url}/a/{self.token(request_id)}"

    def _sms(self, person: Responder, name: str, incident: Incident | None, **context: Any) -> str:
        text = self.renderer.render(
            "sms",
            name,
            person.language,
            incident=incident,
            person=person,
            channel=self.settings.sms_channel,
            **context,
        )
        return drills.mark(text, incident is not None and incident.drill)
