"""The composition root: ``build(settings) -> App`` wires the stages to the store.

The stages (``evaluate``, ``plan``, ``render``, ``escalate``) are pure; the app is
where their inputs are read and their outputs written, one module per part:

- ``core``: the state every part shares, and its small helpers;
- ``lifecycle``: transitions decided, stored, then followed up (resumable);
- ``asking``: asks, re-asks, notices, group notices, public tips;
- ``answers``: replies, tokens and phone entries, through ``acks``;
- ``steps``: the ladder's clock and the messages its steps send;
- ``sending``: the dispatcher, delivery reports and failover;
- ``rostering``: roster, transfer lists and rota, kept in step with the store.

This module adds start and stop, the feeds' entry points and ``build``. Whatever
a person should see as it happens is also passed to ``App.observe`` (the demo
prints it; the console streams it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from warnbot import drills, feedwatch, lifecycle, links, log
from warnbot.answers import Answers
from warnbot.asking import Asking, shown_code
from warnbot.channels import CHANNELS, Channel
from warnbot.core import Core, Observer, utcnow
from warnbot.errors import ConfigError
from warnbot.evaluate import Transition, evaluate_observations, lapsed, longest_window_s
from warnbot.model import Incident, Message, Observation
from warnbot.model import Warning as CapWarning
from warnbot.regions import load_tree
from warnbot.render import Renderer
from warnbot.rostering import Rostering
from warnbot.secrecy import secret_values
from warnbot.sending import PERMANENT_CODES, Sending
from warnbot.settings import Settings
from warnbot.steps import Steps, reminder_codes
from warnbot.store import Store

__all__ = [
    "PERMANENT_CODES",
    "App",
    "Core",
    "Observer",
    "build",
    "channel_names",
    "reminder_codes",
    "shown_code",
    "utcnow",
]

_log = log.get(__name__)


@dataclass
class App(Rostering, Asking, Answers, Steps, Sending):
    """warnbot's running parts; ``start`` before use, ``stop`` at the end. Its state and
    helpers are ``Core``'s; each part of its work is a module of its own."""

    async def start(self) -> None:
        """Migrate the schema, load the region tree and the roster, fetch the link key."""
        await self.store.migrate()
        self.started_at = self.clock()
        if self.settings.regions:
            self.regions = load_tree(self.settings.regions)
        if self.settings.roster:
            await self.seed_roster(self.settings.roster)
        await self.reload_people()
        if self.settings.transfer_lists:
            await self.seed_transfer_lists(self.settings.transfer_lists)
        if self.settings.rota:
            self.load_rota(self.settings.rota)
        secret = self.settings.web.link_secret
        self.link_secret = (
            secret.get_secret_value()
            if secret
            else await self.store.secret("link", links.new_secret)
        )
        log.hide(secret_values(self.settings, self.link_secret))

    async def stop(self) -> None:
        for channel in self.channels.values():
            await channel.aclose()
        await self.store.close()

    async def ingest(self, feed: str, w: CapWarning) -> list[Transition]:
        """Take in one warning; a warning seen before changes nothing (``lifecycle``)."""
        return await lifecycle.ingest(self, feed, w)

    async def lift_lapsed(self) -> list[Transition]:
        """Lift every incident whose warning has expired (a scheduled job)."""
        opened = await self.store.open_incidents()
        expiries = await self.store.warning_expiries(k for _, k in opened if k)
        transitions = lapsed(opened, expiries, self.clock())
        await lifecycle.apply(self, transitions, None, source="expiry")
        return transitions

    async def apply(self, t: Transition, warning_key: str | None, source: str) -> None:
        """Make a transition happen and follow it up (``lifecycle.apply``)."""
        await lifecycle.apply(self, [t], warning_key, source)

    async def open(self, t: Transition, warning_key: str | None, source: str) -> Incident:
        """Open an incident for ``t`` (an ``open`` transition) and ask its people."""
        (applied,) = await lifecycle.apply(self, [t], warning_key, source)
        return applied.incident

    async def resume_unfinished(self) -> int:
        """Follow up the transitions a crash left half done, and evaluate the stored
        readings again when their evaluation did not finish (a scheduled job)."""
        if self.readings_unsettled:
            await self.evaluate_readings("resume")
        return await lifecycle.resume(self)

    async def fire_due_drills(self, worker: str) -> list[Incident]:
        """Open the unannounced drills (双盲) whose hidden moment has come; each plan is
        claimed by one process, and a re-claim after a crash skips what already opened."""
        opened: list[Incident] = []
        open_keys = {i.key for i, _ in await self.store.open_incidents()}
        for plan_ in await self.store.claim_due_drills(self.clock(), worker):
            policy = self.settings.level_policy(plan_.level)
            drafts = [
                d for d in drills.drafts(plan_, policy, self.clock()) if d.key not in open_keys
            ]
            fired = await lifecycle.open_drafts(self, drafts, "演练 drill", f"drill:{plan_.id}")
            await self.store.drill_fired(plan_.id, [i.id for i in fired])
            opened += fired
        return opened

    async def ingest_observations(
        self, feed: str, readings: Sequence[Observation]
    ) -> list[Transition]:
        """Store readings; when any is new (or an evaluation before did not finish),
        evaluate the threshold rules on the stored window."""
        if not await self.store.record_observations(readings) and not self.readings_unsettled:
            return []
        return await self.evaluate_readings(feed)

    async def evaluate_readings(self, source: str) -> list[Transition]:
        """Decide from the readings stored (not those just received), so running it
        again after a crash or a store error decides the same, and apply that."""
        self.readings_unsettled = True
        now = self.clock()
        lookback_s = longest_window_s(self.settings.rules) + self.settings.reading_max_age_s
        since = now - timedelta(seconds=lookback_s)
        recent = await self.store.recent_observations(since)
        opened = await self.store.open_incidents()
        transitions = evaluate_observations(self.settings.rules, recent, opened, now)
        await lifecycle.apply(self, transitions, None, source=source)
        self.readings_unsettled = False
        return transitions

    async def report_silent_feeds(self) -> list[feedwatch.Silence]:
        """Tell the duty officers about each feed silent past its limit, once per silence."""
        health = {h["name"]: h for h in await self.store.feed_health()}
        reported = []
        for s in feedwatch.silent(self.settings.feeds, health, self.started_at, self.clock()):
            await self.store.enqueue(self._feed_alerts(s), self.clock())  # keyed: idempotent
            if await self.store.report_silence(s.feed, s.episode):
                _log.warning("feed_silent", feed=s.feed, silent_s=round(s.silent_s))
                self.observe("feed_silent", silence=s)
                reported.append(s)
        return reported

    def _feed_alerts(self, s: feedwatch.Silence) -> list[Message]:
        channel = self.settings.sms_channel
        return [
            Message(
                f"feed-silent:{s.feed}:{s.episode}:{p.key}:{channel}",
                channel,
                p.phones[0],
                self._sms(p, "feed_silent", None, silence=s),
                None,
                p.key,
            )
            for p in self.duty_officers(None)
        ]


def channel_names(settings: Settings) -> list[str]:
    """The channels this configuration uses: the SMS channel, voice with Twilio, CAP
    pushes when there are downstreams, and every ``[channels.<name>]`` section."""
    names: list[str] = [settings.sms_channel]
    if settings.sms_channel == "twilio":
        names.append("voice")
    if settings.downstream:
        names.append("cap")
    unknown = sorted(set(settings.channels) - set(CHANNELS))
    if unknown:
        raise ConfigError(
            [
                f"channels.{n}: no such channel (known: {', '.join(sorted(CHANNELS))})"
                for n in unknown
            ]
        )
    return names + sorted(set(settings.channels) - set(names))


def build(
    settings: Settings, store: Store | None = None, channels: dict[str, Channel] | None = None
) -> App:
    """Make an App from settings; tests pass their own store or channels."""
    if channels is None:
        channels = {name: CHANNELS[name](settings) for name in channel_names(settings)}
    return App(
        settings=settings,
        store=store or Store.connect(settings.database_url),
        renderer=Renderer(settings.templates_dir),
        channels=channels,
        public_url=settings.web.public_url,
    )
