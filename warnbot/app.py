"""The composition root: ``build(settings) -> App`` wires the stages to the store.

The stages (``evaluate``, ``plan``, ``render``, ``escalate``) are pure; this is
where their inputs are read and their outputs written. Whatever a person
should see as it happens is also passed to ``App.observe`` (the demo prints
it; the console will stream it).
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from warnbot import (
    acks,
    board,
    dispatch,
    drills,
    dutyalerts,
    failover,
    feedwatch,
    lifecycle,
    links,
    log,
    receipts,
    rosters,
    sms,
    transfers,
    validity,
)
from warnbot.channels import CHANNELS, Channel
from warnbot.errors import ConfigError, SendError
from warnbot.escalate import escalate, muster_overdue
from warnbot.evaluate import Transition, evaluate_observations, lapsed, longest_window_s
from warnbot.model import (
    BARE_REPLY,
    FIRST_REPLY_CODE,
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
from warnbot.regions import RegionTree, load_tree
from warnbot.render import Renderer
from warnbot.rosters.audience import is_opt_out, tip_blast
from warnbot.rosters.rota import DutyRota, OnShift, duty_officers_at, load_rota, on_shift
from warnbot.secrecy import secret_values
from warnbot.settings import Settings
from warnbot.store import OutboxRow, Report, Store
from warnbot.store.imports import Origin

# Provider codes that say an address will not work (Twilio: 21211 invalid number,
# 21610 unsubscribed, 21614 not a mobile, 30004 blocked, 30005 unknown handset,
# 30006 landline; Aliyun's delivery receipts (SmsReport err_code): MOBILE_NOT_ON_SERVICE
# 停机、空号、暂停服务、关机、不在服务区, INVALID_NUMBER 号码状态异常, MOBILE_ACCOUNT_ABNORMAL
# 账户异常、欠费, MOBILE_IN_BLACK 黑名单 (the person unsubscribed the signature),
# USER_REJECT 用户退订): recorded on the person, never retried, next address tried.
# Not these: a flow control, keyword block or carrier fault says nothing of the address.
PERMANENT_CODES = frozenset(
    {"21211", "21610", "21614", "30004", "30005", "30006"}
    | {
        "MOBILE_NOT_ON_SERVICE",
        "INVALID_NUMBER",
        "MOBILE_ACCOUNT_ABNORMAL",
        "MOBILE_IN_BLACK",
        "USER_REJECT",
    }
)

# Ladder steps that report people to someone, and the SMS template each uses.
REPORTS = {"superior": "silent", "duty_officer": "duty", "muster": "muster_late"}

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
    rota: DutyRota = field(default_factory=DutyRota)
    roster_version: int = 0  # the stored roster's version in ``people``
    rota_mtime: int | None = None  # the rota file's st_mtime_ns when it was read
    transfers_mtime: int | None = None  # the transfer-list file's, when last compared

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

    def observe(self, event: str, **fields: Any) -> None:
        for observer in self.observers:
            observer(event, fields)

    # ingest → evaluate → plan → render → outbox ---------------------------

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
        """Follow up the transitions a crash left half done (a scheduled job)."""
        return await lifecycle.resume(self)

    async def send_tips(self, incident: Incident) -> int:
        """Tell the public audience of the incident's region (提示短信, lane 1, after
        every responsible person); never for a drill. Returns the tips offered."""
        name = self.settings.tips_audience
        if not name or not drills.reaches_public(incident):
            return 0
        body = self.renderer.render("sms", "tip", self.settings.language, incident=incident)
        channel = self.settings.sms_channel
        await self._before_blast(incident, name, body, channel)
        blast = tip_blast(incident, body, channel)
        if blast is None:
            return 0
        count = await self.store.enqueue_tips(name, [incident.region_code], blast, self.clock())
        self.observe("tips", incident=incident, count=count)
        return count

    async def _before_blast(
        self, incident: Incident, audience: str, body: str, channel: str
    ) -> None:
        """What the blast is about to cost, logged and observed before it is queued:
        messages, segments, money and the time the channel's limit needs to send it."""
        count = await self.store.audience_count(audience, [incident.region_code])
        guess = sms.cost_for({body: count}, self.settings.limit_for(channel))
        _log.info(
            "tips_blast",
            incident=incident.id,
            audience=audience,
            messages=guess.messages,
            segments=guess.segments,
            cost=round(guess.cost, 2),
            drain_s=None if guess.drain_s is None else round(guess.drain_s),
        )
        self.observe("tips_estimate", incident=incident, estimate=guess)

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

    async def notify(
        self,
        incident: Incident,
        reached: frozenset[str] = frozenset(),
        exclude: frozenset[str] = frozenset(),
    ) -> list[Request]:
        """Ask everyone the plan names to confirm; their messages enter the outbox.
        Persons in ``reached`` were asked at the level before: their ask says 升级.
        Persons in ``exclude`` are asked by another incident of the same response."""
        people = [p for p in self.people.values() if p.key not in exclude]
        deliveries = plan(incident, people, self.settings.sms_channel, self.clock())
        by_key = {d.responder.key: d for d in deliveries}
        lists = await self._transfer_lists(incident, by_key)

        def compose(req: Request) -> list[Message]:
            d = by_key[req.responder_key]
            muster_s = d.policy.muster_s if d.policy and d.muster_deadline else None
            muster_min = round(muster_s / 60) if muster_s else 0
            body = self._sms(
                d.responder,
                "upgrade" if req.responder_key in reached else "request",
                incident,
                code=shown_code(req.reply_code),
                link=self.link(req.id),
                muster_min=muster_min,
            )
            if req.responder_key in lists:
                block = transfers.render_block(
                    self.renderer,
                    lists[req.responder_key],
                    d.responder.language,
                    f"{self.link(req.id)}/list",
                    d.channel,
                )
                body = transfers.choose_block(body, block)
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

    async def _transfer_lists(
        self, incident: Incident, asked: Mapping[str, Delivery]
    ) -> dict[str, list[transfers.TransferEntry]]:
        """Each asked person's 转移清单, when the incident's level calls for transfer."""
        if not transfers.calls_for_transfer(incident.policy):
            return {}
        lists: dict[str, list[transfers.TransferEntry]] = defaultdict(list)
        for entry in await self.store.transfer_list(asked):
            lists[entry.responder_key].append(entry)
        return lists

    async def reask(self, incident: Incident) -> list[Request]:
        """After an upgrade: the old level's ladder stops, and everyone is asked again
        under the new level's policy — those already reached with a 升级 notice; those
        the new level no longer reaches are told of it without being asked."""
        await self.store.supersede(incident.id, incident.level)
        reached = frozenset(await self.store.reached(incident.id))
        created = await self.notify(incident, reached)
        asked = {
            r.responder_key
            for r in await self.store.requests_of(incident.id)
            if r.level == incident.level
        }
        await self._tell(incident, sorted(reached - asked), "upgraded")
        return created

    async def tell_reached(self, incident_id: int, notice: str) -> None:
        """Tell everyone asked about an incident (解除 ``lifted``); once per person."""
        incident = await self.store.incident(incident_id)
        if incident is not None:
            await self._tell(incident, sorted(await self.store.reached(incident_id)), notice)

    async def _tell(self, incident: Incident, keys: Sequence[str], notice: str) -> None:
        channel = self.settings.sms_channel
        messages = [
            Message(
                f"{notice}:{incident.id}:{incident.level.value}:{p.key}:{channel}",
                channel,
                p.phones[0],
                self._sms(p, notice, incident),
                incident.id,
                p.key,
            )
            for k in keys
            if (p := self.people.get(k)) is not None and p.phones
        ]
        await self.store.enqueue(messages, self.clock())
        if messages:
            self.observe(f"told_{notice}", incident=incident, count=len(messages))

    def _group_messages(self, incident: Incident, asked: list[Delivery]) -> list[Message]:
        """One message per configured chat group and tier, @mentioning those asked."""
        notices = group_notices(self.settings.groups, incident, asked)
        return [
            Message(
                f"group:{incident.id}:{n.channel}:{n.group}:{n.tier.value}:{incident.level.value}",
                n.channel,
                n.group,
                drills.mark(
                    self.renderer.render(
                        "chat",
                        "group",
                        self.settings.language,
                        incident=incident,
                        tier=n.tier,
                        people=n.people,
                    ),
                    incident.drill,
                ),
                incident.id,
                mentions=tuple(p.phones[0] for p in n.people),
            )
            for n in notices
        ]

    # acks ------------------------------------------------------------------

    async def sms_reply(self, phone: str, text: str, message_id: str | None = None) -> str:
        """Record an SMS answer; returns the text to answer the sender with ("" when the
        answer was queued instead: a resident's 退订 confirmation).

        ``message_id`` is the provider's id of the inbound message (Twilio
        ``MessageSid``, Aliyun ``sequence_id``, prefixed by the provider): a provider
        retrying the same webhook then files its report back once, not twice."""
        if is_opt_out(text) and await self.opt_out(phone, message_id):
            return ""  # the confirmation goes through the outbox, on every provider
        outcome = await acks.intake_sms(self.store, phone, text, self.clock())
        person = self.people.get(outcome.result.request.responder_key) if outcome.result else None
        answer = await self._after_ack(outcome, person, phone)
        report = receipts.parse_report(text)
        if outcome.kind == "which" or (outcome.kind == "unknown" and not report.parsed):
            return answer  # "which": ambiguous, the sender is asked for a code first
        filed = await self._file_report(phone, report, outcome, message_id)
        if filed is None or outcome.result is not None:
            return answer
        return self.renderer.render(
            "sms", "report", filed.language, report=report, summary=receipts.summary(report)
        )

    async def opt_out(self, phone: str, message_id: str | None = None) -> bool:
        """A resident's 退订 ("TD", "退订", "STOP"): the number leaves every public
        audience (recorded with the time, so a re-import does not add it back unless
        it says so) and is sent a short confirmation once per message. False when the
        number is in no audience and never opted out: the reply is then read as any
        other (a responsible person cannot opt out of 叫应)."""
        removed = await self.store.opt_out(phone, self.clock())
        if removed is None:
            return False
        _log.info("opted_out", phone=log.mask_phone(phone), audiences=removed)
        key = f"optout:{message_id or phone + ':' + self.clock().isoformat()}"
        body = self.renderer.render("sms", "optout", self.settings.language)
        confirm = Message(key[:200], self.settings.sms_channel, phone, body)
        await self.store.enqueue([confirm], self.clock())
        self.observe("opted_out", phone=phone, audiences=removed)
        return True

    async def _file_report(
        self,
        phone: str,
        report: receipts.Report,
        outcome: acks.Outcome,
        message_id: str | None = None,
    ) -> Responder | None:
        """Keep what an SMS reports back (回执: "已转移12户30人", "已转移 3号") with the
        request it answers — or, for a report sent on its own, the sender's latest
        request — and sum it into the incident; the person, or None when nothing is
        filed (a bare confirmation, or a sender with no request). A message already
        filed under ``message_id`` (a provider's retry) is answered alike, not summed
        again."""
        if outcome.result is not None:
            request: Request | None = outcome.result.request
            reply = acks.parse_reply(report.text)
            if not (report.parsed or (reply is not None and reply.report)):
                return None
        else:
            answered = outcome.sender.answered if outcome.sender else []
            request = max(answered, key=lambda r: r.sent_at, default=None)
        person = self.people.get(request.responder_key) if request else None
        if request is None or person is None:
            return None
        report_id, _ = await self.store.file_report(
            request.incident_id, request.id, person, report, "sms", self.clock(), message_id
        )
        if report_id is not None:
            self.observe("report", request=request, report=report, person=person)
        return person

    async def link_ack(self, request_id: int, path: AckPath = AckPath.LINK) -> acks.Outcome:
        """Record a confirmation by a request id already proven by a signed token."""
        outcome = await acks.intake_token(self.store, request_id, path, self.clock())
        await self._after_ack(outcome, None, None)
        return outcome

    async def duty_ack(
        self, incident_id: int, person_key: str, by: str, note: str = "", arrived: bool = False
    ) -> acks.Outcome:
        """A duty officer records a confirmation (or arrival) taken by phone; ``by``,
        their name, goes into the audit trail with the note."""
        outcome = await acks.intake_duty_officer(
            self.store, incident_id, person_key, by, self.clock(), note, arrived
        )
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
                {"code": r.reply_code, "headline": await self._headline(r, outcome)}
                for r in outcome.open
            ]
            return self.renderer.render(
                "sms", outcome.kind if open_ else "unknown", language, open=open_
            )
        result = outcome.result
        incident = (
            outcome.sender.incidents.get(result.request.incident_id) if outcome.sender else None
        )
        incident = incident or await self.store.incident(result.request.incident_id)
        if outcome.kind in ("confirmed", "arrived"):
            self.observe(
                outcome.kind,
                request=result.request,
                late=result.late,
                person=self.people.get(result.request.responder_key),
            )
        muster = result.request.muster_deadline is not None and result.request.arrived_at is None
        return self.renderer.render(
            "sms",
            "arrived" if result.request.arrived_at else "confirmed",
            language,
            incident=incident,
            late=result.late,
            muster=muster,
        )

    async def _headline(self, r: Request, outcome: acks.Outcome) -> str:
        """The headline of the incident ``r`` is about; an SMS's sender came with it."""
        known = outcome.sender.headline(r.incident_id) if outcome.sender else None
        if known is not None:
            return known
        incident = await self.store.incident(r.incident_id)
        return incident.headline if incident else ""

    # the duty officer on shift -------------------------------------------------------

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

    # reads for the console and the JSON API ---------------------------------------

    async def report_totals(self, incident_id: int) -> dict[str, receipts.RegionTotals]:
        """The incident's reports back (回执) summed per region code, each region with its
        own figures and the total of everything inside it, named from the region tree."""
        return await self.store.report_totals(incident_id, self.regions)

    async def transfer_board(self, incident_id: int) -> list[transfers.PersonProgress]:
        """Each transfer list (转移清单) of a person asked in the incident, entry by entry,
        moved or not; unfinished lists first."""
        return await self.store.transfer_board(incident_id)

    async def muster_board(self, incident_id: int) -> list[board.MusterTally]:
        """The muster board (集结) of an incident: per tier, who arrived (in time, late),
        who is on the way (answered, not arrived) and who has not answered, against the
        deadline; persons by key (``self.people`` has their names). [] without a muster."""
        return board.muster(await self.store.requests_of(incident_id))

    async def mark_moved(
        self, incident_id: int, person_key: str, entries: Sequence[str], by: str
    ) -> list[transfers.Mark]:
        """A duty officer marks entries of a person's list moved (``entries``: numbers, or
        ``["all"]``), their name ``by`` kept on each mark; returns the new marks.
        ValueError (nothing changed) for an empty name, a person not asked, an
        unknown entry."""
        marks = await self.store.mark_moved_by(incident_id, person_key, entries, by, self.clock())
        if marks:
            self.observe("moved", incident_id=incident_id, marks=marks)
        return marks

    # the ladder and the outbox -----------------------------------------------

    async def tick(self) -> list[Step]:
        """Fire the ladder steps that are due: repeat, voice, superior, duty officer,
        unreachable (see ``escalate``), each once; a person whose every address failed
        gets the ``unreachable`` step too, so the duty officer hears of them once; a
        person on the way past the muster deadline gets ``muster`` (their superior is
        told)."""
        now = self.clock()
        pending = await self.store.pending()
        gave_up = await self.store.gave_up_untold()  # every address failed: no step yet
        late = await self.store.late_to_muster(now)
        ids = {r.incident_id for r, _ in pending} | {r.incident_id for r in late}
        fired = await self.store.fired_keys(ids)
        superiors = {k: p.superior for k, p in self.people.items()}
        steps = [
            *escalate(pending, superiors, fired, now),
            *(Step(f"unreachable:{r.id}", "unreachable", r.incident_id, r.id, r.responder_key)
              for r in gave_up),
            *muster_overdue(late, superiors, fired, now),
        ]  # fmt: skip
        if not steps:
            return []
        requests = {r.id: r for r, _ in pending}
        incidents = {i: await self.store.incident(i) for i in {s.incident_id for s in steps}}
        fired_now = await self.store.fire(
            steps, now, lambda f: self._step_messages(f, requests, incidents)
        )
        for s in fired_now:
            self.observe("escalated", step=s, people=self.people)
        return fired_now

    def _step_messages(
        self, steps: list[Step], requests: dict[int, Request], incidents: dict[int, Incident | None]
    ) -> list[Message]:
        codes = reminder_codes(requests.values())
        asks = [
            self._ask_again(
                s, requests[s.request_id], incidents[s.incident_id], codes[s.request_id]
            )
            for s in steps
            if s.kind in ("repeat", "voice")
        ]
        silent: dict[tuple[str, int, str | None], list[Step]] = defaultdict(list)
        for s in steps:
            if s.kind in REPORTS:
                silent[(s.kind, s.incident_id, s.target_key)].append(s)
        reports = [
            m
            for (kind, i, target), group in silent.items()
            for m in self._silent_report(group, target, incidents[i], kind)
        ]
        return [m for m in asks if m] + reports + self._unreachable_alerts(steps, incidents)

    def _unreachable_alerts(
        self, steps: list[Step], incidents: Mapping[int, Incident | None]
    ) -> list[Message]:
        """Per incident, one alert to its duty officer naming everyone given up now."""
        gone: dict[int, list[Step]] = defaultdict(list)
        for s in steps:
            if s.kind == "unreachable":
                gone[s.incident_id].append(s)
        known = self.people
        return [
            m
            for i, group in gone.items()
            if (incident := incidents.get(i)) is not None
            for m in self._duty_alerts(
                incident,
                "unreachable",
                dutyalerts.steps_token(group),
                people=[known[s.responder_key] for s in group if s.responder_key in known],
            )
        ]

    def _ask_again(
        self, s: Step, req: Request, incident: Incident | None, code: str
    ) -> Message | None:
        """A reminder by SMS showing ``code`` (``reminder_codes``), or a call by voice
        (when a voice channel is configured)."""
        person = self.people.get(s.responder_key)
        if person is None or incident is None or not person.phones:
            return None
        if s.kind == "voice":
            if "voice" not in self.channels:
                _log.warning("no_voice_channel", step=s.key)
                return None
            text = drills.mark(
                self.renderer.render(
                    "voice", "request", person.language, incident=incident, person=person
                ),
                incident.drill,
            )
            key = f"{s.key}:voice"
            return Message(
                key,
                "voice",
                person.phones[0],
                text,
                incident.id,
                person.key,
                ack_token=self.token(req.id),
            )
        body = self._sms(person, "repeat", incident, code=code, n=s.n, link=self.link(req.id))
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

    def _silent_report(
        self, group: list[Step], target: str | None, incident: Incident | None, kind: str
    ) -> list[Message]:
        """One message per recipient listing everyone in this group: silent (to the
        superior, ``kind`` superior; to the duty officer, ``duty_officer``: still silent
        after the superior) or on the way past the muster deadline (``muster``: to the
        superior). A group without a superior goes to the duty officer."""
        recipients = (
            [self.people[target]]
            if kind != "duty_officer" and target in self.people
            else self.duty_officers(incident)
        )
        silent = [self.people[s.responder_key] for s in group if s.responder_key in self.people]
        digest = dutyalerts.steps_token(group)
        channel = self.settings.sms_channel
        if incident is None:
            return []
        template = REPORTS[kind]
        return [
            Message(
                f"{template}:{digest}:{r.key}:{channel}",
                channel,
                r.phones[0],
                self._sms(r, template, incident, silent=silent),
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
        await lifecycle.apply(self, transitions, None, source=feed)
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

    # the outbox ----------------------------------------------------------------

    def dispatcher(self) -> dispatch.Dispatcher:
        return dispatch.Dispatcher(
            self.store,
            self.channels,
            lambda: self.clock(),
            self.settings.rate_limits,
            self._failover,
            on_report=self._after_report,
            tips_ahead_s=self.settings.tips_ahead_s,
            lease_s=self.settings.claim_lease_s,
            validity=functools.partial(validity.for_rows, self.store, self.settings.twilio),
        )

    async def pump(self) -> int:
        return await self.dispatcher().pump()

    async def delivery_report(self, provider_id: str, status: str, error: str | None) -> None:
        """A provider's later word on a message; a permanent failure fails over. A report
        that came before its send was recorded is kept; the dispatcher applies it when
        it records the send, and calls ``_after_report`` then."""
        if await self.store.record_delivery(provider_id, status, error, self.clock()):
            await self._after_report(Report(provider_id, status, error))

    async def _after_report(self, report: Report) -> None:
        """What an applied report means: an ask delivered, or an address that fails."""
        provider_id, status, error = report.provider_id, report.status, report.error
        row = await self.store.row_by_provider_id(provider_id)
        asked = row is not None and row.key.split(":", 1)[0] in ("request", "repeat", "voice")
        if row is not None and asked and status in ("delivered", "read"):
            await self.store.mark_delivered(int(row.key.split(":")[1]), self.clock())
        if row is not None and status in ("failed", "undelivered") and error in PERMANENT_CODES:
            await self._failover(row, SendError(f"{status} {error}", retryable=False, code=error))

    async def _failover(self, row: OutboxRow, e: SendError) -> None:
        """A message failed for good (or ran out of retries): record a permanent failure
        on the person — an exhausted address is only logged, not blocked for later
        messages — then send the same message to their next address in
        ``failover_order`` (see ``warnbot.failover``); with none left, unreachable."""
        key = row.responder_key
        if key is None:
            return
        if not e.retryable:
            await self.store.record_address_failure(
                key, row.channel, row.address, e.code, e.reason, self.clock()
            )
        person = self.people.get(key)
        spare = await self._spare(row, person) if person is not None else None
        if person is None or spare is None:
            _log.warning("unreachable", responder=key, error=e.reason)
            await self.store.mark_unreachable(key, self.clock())
            self.observe("unreachable", responder_key=key, reason=e.reason)
            return
        _log.info("failover", message_id=row.id, responder=key, channel=spare.channel)
        await self.store.enqueue([await self._failover_message(row, person, spare)], self.clock())

    async def _spare(self, row: OutboxRow, person: Responder) -> failover.Address | None:
        """The person's next address for ``row``'s message: not tried for it, not blocked."""
        ordered = failover.addresses(
            person,
            self.settings.failover_order,
            self.settings.sms_channel,
            self.channels,
            self.settings.groups,
            asks=row.ack_token is not None,
        )
        tried = await self.store.tried_addresses(failover.base_key(row.key), row.id)
        return failover.next_address(ordered, tried, await self.store.blocked_addresses(person.key))

    async def _failover_message(
        self, row: OutboxRow, person: Responder, spare: failover.Address
    ) -> Message:
        """``row``'s message for ``spare``: the same text within a template family; an
        ask moving to another family is rendered from that family's ``request``."""
        body = row.body
        if spare.family != failover.family(row.channel) and row.ack_token is not None:
            body = await self._ask_for(row, person, spare.family) or body
        return dataclasses.replace(
            row.message(),
            key=failover.alt_key(row.key, spare),
            channel=spare.channel,
            to=spare.to,
            body=body,
            mentions=spare.mentions,
        )

    async def _ask_for(self, row: OutboxRow, person: Responder, family: str) -> str | None:
        """The ask of ``row``'s request in template ``family``, or None if it is gone."""
        request_id = links.verify(row.ack_token or "", self.link_secret)
        request = await self.store.request(request_id) if request_id is not None else None
        incident = await self.store.incident(request.incident_id) if request else None
        if request is None or incident is None:
            return None
        link = self.link(request.id)
        if family == "sms":
            return self._sms(person, "request", incident, code=request.reply_code, link=link)
        text = self.renderer.render(
            family, "request", person.language, incident=incident, person=person, link=link
        )
        return drills.mark(text, incident.drill)

    # helpers ---------------------------------------------------------------

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


def shown_code(reply_code: str) -> str:
    """The code an ask shows: "1" for the person's only open request (code 11 when it
    was asked; see ``model.FIRST_REPLY_CODE``), else the request's own code."""
    return BARE_REPLY if reply_code == str(FIRST_REPLY_CODE) else reply_code


def reminder_codes(waiting: Iterable[Request]) -> dict[int, str]:
    """The code each reminder shows, by request id, given every request still waiting
    for an answer (of any incident): with several waiting for one person, each shows its
    own code, since a bare "1" then confirms none of them; alone, it shows what its ask
    showed (``shown_code``). The ladder's reminders and the console's "remind the silent
    now" both ask this, so a person is never told two different codes for one request."""
    requests = list(waiting)
    count = Counter(r.responder_key for r in requests)
    return {
        r.id: r.reply_code if count[r.responder_key] > 1 else shown_code(r.reply_code)
        for r in requests
    }


def _mtime(path: Path) -> int | None:
    """The file's modification time in ns, None when it cannot be read."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


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
