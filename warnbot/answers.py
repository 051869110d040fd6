"""Answers coming in: SMS replies (codes, words, reports back 回执, 退订), signed
tokens from links, keypads and chat buttons, a duty officer's phone entries — all
through ``acks`` — and the reads the console and API show of what came back.
"""

from __future__ import annotations

from collections.abc import Sequence

from warnbot import acks, board, links, log, receipts, transfers
from warnbot.core import Core
from warnbot.model import AckPath, Message, Request, Responder
from warnbot.rosters.audience import is_opt_out

_log = log.get(__name__)


class Answers(Core):
    """Mixed into ``App``; see the module's notes."""

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
