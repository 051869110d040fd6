"""The composition root: ``build(settings) -> App`` wires the stages to the store.

The stages (``evaluate``, ``plan``, ``render``, ``escalate``) are pure; this is
where their inputs are read and their outputs written. Whatever a person
should see as it happens is also passed to ``App.observe`` (the demo prints
it; the console will stream it).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from warnbot import acks, dispatch, feedwatch, links, log, roster
from warnbot.channels import CHANNELS, Channel
from warnbot.errors import ConfigError, SendError
from warnbot.escalate import escalate
from warnbot.evaluate import Transition, evaluate, evaluate_observations, lapsed, longest_window_s
from warnbot.model import (
    AckPath,
    Delivery,
    Incident,
    Message,
    Observation,
    Request,
    Responder,
    Step,
)
from warnbot.model import Warning as CapWarning
from warnbot.plan import duty_officers, group_notices, plan
from warnbot.publish import publish_cap
from warnbot.regions import RegionTree, load_tree
from warnbot.render import Renderer
from warnbot.settings import Settings
from warnbot.store import OutboxRow, Store

# Provider codes that say an address will never work (Twilio: 21211 invalid number,
# 21610 unsubscribed, 21614 not a mobile, 30004 blocked, 30005 unknown handset,
# 30006 landline): recorded on the person, never retried, next address tried.
PERMANENT_CODES = frozenset({"21211", "21610", "21614", "30004", "30005", "30006"})

_log = log.get(__name__)
Observer = Callable[[str, dict[str, Any]], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    """warnbot's running parts; ``start`` before use, ``stop`` at the end."""

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

    async def start(self) -> None:
        """Migrate the schema, load the roster, fetch the link key."""
        await self.store.migrate()
        self.started_at = self.clock()
        if self.settings.roster:
            await self.store.sync_roster(roster.load(self.settings.roster))
        await self.reload_people()
        if self.settings.regions:
            self.regions = load_tree(self.settings.regions)
        secret = self.settings.web.link_secret
        self.link_secret = (
            secret.get_secret_value()
            if secret
            else await self.store.secret("link", links.new_secret)
        )

    async def stop(self) -> None:
        for channel in self.channels.values():
            await channel.aclose()
        await self.store.close()

    async def reload_people(self) -> None:
        self.people = {p.key: p for p in await self.store.roster()}

    def observe(self, event: str, **fields: Any) -> None:
        for observer in self.observers:
            observer(event, fields)

    # ingest → evaluate → plan → render → outbox ---------------------------

    async def ingest(self, feed: str, w: CapWarning) -> list[Transition]:
        """Take in one warning; a warning seen before changes nothing."""
        if not await self.store.record_warning(feed, w, self.clock()):
            return []
        opened = await self.store.open_incidents()
        expiries = await self.store.warning_expiries(k for _, k in opened if k)
        transitions = evaluate(
            self.settings.rules, w, opened, self.clock(), tree=self.regions, holder_expires=expiries
        )
        for t in transitions:
            await self.apply(t, w.key, source=feed)
        return transitions

    async def lift_lapsed(self) -> list[Transition]:
        """Lift every incident whose warning has expired (a scheduled job)."""
        opened = await self.store.open_incidents()
        expiries = await self.store.warning_expiries(k for _, k in opened if k)
        transitions = lapsed(opened, expiries, self.clock())
        for t in transitions:
            await self.apply(t, None, source="expiry")
        return transitions

    async def apply(self, t: Transition, warning_key: str | None, source: str) -> None:
        """Make a transition happen, then publish it as CAP (when configured)."""
        _log.info("transition", kind=t.kind, incident=t.key, level=t.level.roman, reason=t.reason)
        if t.kind == "open":
            incident_id = (await self.open(t, warning_key, source)).id
        elif t.incident_id is None:
            return
        elif t.kind == "lift":
            incident_id = t.incident_id
            await self.store.lift(incident_id, self.clock())
            self.observe("lifted", key=t.key, reason=t.reason)
        else:
            incident_id = t.incident_id
            policy = self.settings.level_policy(t.level) if t.kind == "upgrade" else None
            await self.store.follow(incident_id, t.level, warning_key, policy)
            if t.kind != "update":
                self.observe(t.kind, key=t.key, level=t.level, reason=t.reason)
        incident = await self.store.incident(incident_id)
        if incident is None:
            return
        if t.kind == "upgrade":
            await self.notify(incident)  # the tiers the new level adds; nobody twice
        await publish_cap(self.store, self.settings, incident, t.kind, self.clock())

    async def open(self, t: Transition, warning_key: str | None, source: str) -> Incident:
        draft = Incident(
            id=0,
            key=t.key,
            hazard=t.hazard,
            region_code=t.region_code,
            level=t.level,
            status="open",
            opened_at=self.clock(),
            headline=t.headline,
            policy=self.settings.level_policy(t.level),
            source=source,
        )
        incident = await self.store.open_incident(draft, warning_key)
        self.observe("opened", incident=incident, reason=t.reason)
        await self.notify(incident)
        return incident

    async def notify(self, incident: Incident) -> list[Request]:
        """Ask everyone the plan names to confirm; their messages enter the outbox."""
        deliveries = plan(incident, self.people.values(), self.settings.sms_channel, self.clock())
        by_key = {d.responder.key: d for d in deliveries}

        def compose(req: Request) -> list[Message]:
            d = by_key[req.responder_key]
            body = self._sms(
                d.responder, "request", incident, code=req.reply_code, link=self.link(req.id)
            )
            key = f"request:{req.id}:{d.channel}"
            return [
                Message(
                    key,
                    d.channel,
                    d.address,
                    body,
                    incident.id,
                    d.responder.key,
                    ack_token=self.token(req.id),
                )
            ]

        def together(created: list[Request]) -> list[Message]:
            asked = [by_key[r.responder_key] for r in created]
            return self._group_messages(incident, asked)

        created = await self.store.add_requests(
            incident.id, deliveries, self.clock(), compose, together
        )
        self.observe("requested", incident=incident, requests=created, people=self.people)
        return created

    def _group_messages(self, incident: Incident, asked: list[Delivery]) -> list[Message]:
        """One message per configured chat group and tier, @mentioning those asked."""
        notices = group_notices(self.settings.groups, incident, asked)
        return [
            Message(
                f"group:{incident.id}:{n.channel}:{n.group}:{n.tier.value}:{incident.level.value}",
                n.channel,
                n.group,
                self.renderer.render(
                    "chat",
                    "group",
                    self.settings.language,
                    incident=incident,
                    tier=n.tier,
                    people=n.people,
                ),
                incident.id,
                mentions=tuple(p.phones[0] for p in n.people),
            )
            for n in notices
        ]

    # acks ------------------------------------------------------------------

    async def sms_reply(self, phone: str, text: str) -> str:
        """Record an SMS answer; returns the text to answer the sender with."""
        outcome = await acks.intake_sms(self.store, phone, text, self.clock())
        person = self.people.get(outcome.result.request.responder_key) if outcome.result else None
        return await self._after_ack(outcome, person, phone)

    async def link_ack(self, request_id: int, path: AckPath = AckPath.LINK) -> acks.Outcome:
        """Record a confirmation by a request id already proven by a signed token."""
        outcome = await acks.intake_link(self.store, request_id, self.clock(), path)
        await self._after_ack(outcome, None, None)
        return outcome

    async def token_ack(self, token: str, path: AckPath) -> acks.Outcome | None:
        """Record a confirmation carried by a signed token (a chat button's callback);
        None when the token is forged or names no request."""
        request_id = links.verify(token, self.link_secret)
        if request_id is None or await self.store.request(request_id) is None:
            return None
        return await self.link_ack(request_id, path)

    async def _after_ack(
        self, outcome: acks.Outcome, person: Responder | None, phone: str | None
    ) -> str:
        language = person.language if person else self.settings.language
        if outcome.result is None:
            open_ = [
                {"code": r.reply_code, "headline": await self._headline(r)} for r in outcome.open
            ]
            return self.renderer.render(
                "sms", outcome.kind if open_ else "unknown", language, open=open_
            )
        result = outcome.result
        incident = await self.store.incident(result.request.incident_id)
        if outcome.kind == "confirmed":
            self.observe(
                "confirmed",
                request=result.request,
                late=result.late,
                person=self.people.get(result.request.responder_key),
            )
        return self.renderer.render(
            "sms", "confirmed", language, incident=incident, late=result.late
        )

    async def _headline(self, r: Request) -> str:
        incident = await self.store.incident(r.incident_id)
        return incident.headline if incident else ""

    # the ladder and the outbox -----------------------------------------------

    async def tick(self) -> list[Step]:
        """Fire the ladder steps that are due (repeat, then tell the superior)."""
        pending = await self.store.pending()
        fired = await self.store.fired_keys({r.incident_id for r, _ in pending})
        superiors = {k: p.superior for k, p in self.people.items()}
        steps = escalate(pending, superiors, fired, self.clock())
        if not steps:
            return []
        requests = {r.id: r for r, _ in pending}
        incidents = {i: await self.store.incident(i) for i in {s.incident_id for s in steps}}
        fired_now = await self.store.fire(
            steps, self.clock(), lambda f: self._step_messages(f, requests, incidents)
        )
        for s in fired_now:
            self.observe("escalated", step=s, people=self.people)
        return fired_now

    def _step_messages(
        self, steps: list[Step], requests: dict[int, Request], incidents: dict[int, Incident | None]
    ) -> list[Message]:
        repeats = [
            self._repeat(s, requests[s.request_id], incidents[s.incident_id])
            for s in steps
            if s.kind == "repeat"
        ]
        silent: dict[tuple[int, str | None], list[Step]] = defaultdict(list)
        for s in steps:
            if s.kind == "superior":
                silent[(s.incident_id, s.target_key)].append(s)
        reports = [
            m
            for (i, target), group in silent.items()
            for m in self._silent_report(group, target, incidents[i])
        ]
        return [m for m in repeats if m] + reports

    def _repeat(self, s: Step, req: Request, incident: Incident | None) -> Message | None:
        person = self.people.get(s.responder_key)
        if person is None or incident is None:
            return None
        body = self._sms(
            person, "repeat", incident, code=req.reply_code, n=s.n, link=self.link(req.id)
        )
        channel = self.settings.sms_channel
        return Message(
            f"{s.key}:{channel}",
            channel,
            person.phones[0],
            body,
            incident.id,
            person.key,
            ack_token=self.token(req.id),
        )

    def _silent_report(
        self, group: list[Step], target: str | None, incident: Incident | None
    ) -> list[Message]:
        """One message per recipient listing everyone silent in this group."""
        recipients = (
            [self.people[target]] if target in self.people else duty_officers(self.people.values())
        )
        silent = [self.people[s.responder_key] for s in group if s.responder_key in self.people]
        digest = hashlib.sha256("|".join(sorted(s.key for s in group)).encode()).hexdigest()[:16]
        channel = self.settings.sms_channel
        if incident is None:
            return []
        return [
            Message(
                f"silent:{digest}:{r.key}:{channel}",
                channel,
                r.phones[0],
                self._sms(r, "silent", incident, silent=silent),
                incident.id,
                r.key,
            )
            for r in recipients
        ]

    # feeds -------------------------------------------------------------------

    async def ingest_observations(
        self, feed: str, readings: Sequence[Observation]
    ) -> list[Transition]:
        """Store readings; when any is new, evaluate the threshold rules on the window."""
        if not await self.store.record_observations(readings):
            return []
        now = self.clock()
        lookback_s = longest_window_s(self.settings.rules) + self.settings.reading_max_age_s
        since = now - timedelta(seconds=lookback_s)
        recent = await self.store.recent_observations(since)
        opened = await self.store.open_incidents()
        transitions = evaluate_observations(self.settings.rules, recent, opened, now)
        for t in transitions:
            await self.apply(t, None, source=feed)
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
            for p in duty_officers(self.people.values())
        ]

    # the outbox ----------------------------------------------------------------

    def dispatcher(self) -> dispatch.Dispatcher:
        return dispatch.Dispatcher(
            self.store,
            self.channels,
            lambda: self.clock(),
            self.settings.rate_limits,
            self._failover,
        )

    async def pump(self) -> int:
        return await self.dispatcher().pump()

    async def delivery_report(self, provider_id: str, status: str, error: str | None) -> None:
        """A provider's later word on a message; a permanent failure fails over."""
        if not await self.store.record_delivery(provider_id, status, error):
            return
        row = await self.store.row_by_provider_id(provider_id)
        if row is not None and status in ("failed", "undelivered") and error in PERMANENT_CODES:
            await self._failover(row, SendError(f"{status} {error}", retryable=False, code=error))

    async def _failover(self, row: OutboxRow, e: SendError) -> None:
        """Record a permanent failure on the person, then try their next address."""
        if row.responder_key is None:
            return
        await self.store.record_address_failure(
            row.responder_key, row.channel, row.address, e.code, e.reason, self.clock()
        )
        person = self.people.get(row.responder_key)
        failed = await self.store.failed_addresses(row.responder_key)
        spare = next((p for p in person.phones if p not in failed), None) if person else None
        if spare is None:
            _log.warning("unreachable", responder=row.responder_key, error=e.reason)
            self.observe("unreachable", responder_key=row.responder_key, reason=e.reason)
            return
        message = dataclasses.replace(
            row.message(), key=f"{row.key.split('|')[0]}|alt:{spare}", to=spare
        )
        await self.store.enqueue([message], self.clock())

    # helpers ---------------------------------------------------------------

    def token(self, request_id: int) -> str:
        return links.sign(request_id, self.link_secret)

    def link(self, request_id: int) -> str:
        return f"{self.public_url}/a/{self.token(request_id)}"

    def _sms(self, person: Responder, name: str, incident: Incident | None, **context: Any) -> str:
        return self.renderer.render(
            "sms",
            name,
            person.language,
            incident=incident,
            person=person,
            channel=self.settings.sms_channel,
            **context,
        )


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
