"""Sending: the dispatcher over the outbox, delivery reports coming back, and
failover — an address that will never work is blocked and the person's next
address (another phone, a call, a chat) gets the same ask.
"""

from __future__ import annotations

import dataclasses
import functools

from warnbot import dispatch, drills, failover, links, log, validity
from warnbot.core import Core
from warnbot.errors import SendError
from warnbot.model import Message, Responder
from warnbot.store import OutboxRow, Report

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

_log = log.get(__name__)


class Sending(Core):
    """Mixed into ``App``; see the module's notes."""

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

    async def delivery_report(
        self, provider_id: str, status: str, error: str | None, stand_in: str | None = None
    ) -> None:
        """A provider's later word on a message; a permanent failure fails over. A report
        that came before its send was recorded is kept; the dispatcher applies it when
        it records the send, and calls ``_after_report`` then. ``stand_in``: the id the
        send may be recorded under instead (a reconciled Aliyun send has no BizId)."""
        if await self.store.record_delivery(provider_id, status, error, self.clock(), stand_in):
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
