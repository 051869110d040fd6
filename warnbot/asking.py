"""Asking people: the asks of an incident (one request per person the plan names,
its messages in the outbox, in one transaction), the 升级 re-asks after an upgrade,
the notices to everyone reached (解除), chat-group notices, and the public tip blast.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from warnbot import drills, log, sms, transfers
from warnbot.core import Core
from warnbot.model import BARE_REPLY, FIRST_REPLY_CODE, Delivery, Incident, Message, Request
from warnbot.plan import group_notices, plan
from warnbot.rosters.audience import tip_blast

_log = log.get(__name__)


class Asking(Core):
    """Mixed into ``App``; see the module's notes."""

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
            upgrade = req.responder_key in reached
            entries = lists.get(req.responder_key)
            return [self._ask(incident, by_key[req.responder_key], req, upgrade, entries)]

        def together(created: list[Request]) -> list[Message]:
            asked = [by_key[r.responder_key] for r in created]
            return self._group_messages(incident, asked)

        created = await self.store.add_requests(
            incident.id, deliveries, self.clock(), compose, together
        )
        self.observe("requested", incident=incident, requests=created, people=self.people)
        return created

    def _ask(
        self,
        incident: Incident,
        d: Delivery,
        req: Request,
        upgrade: bool,
        entries: list[transfers.TransferEntry] | None,
    ) -> Message:
        """One person's ask: the request (升级 when ``upgrade``) with its reply code, link
        and muster time, and on the levels that call for transfer their 转移清单."""
        muster_s = d.policy.muster_s if d.policy and d.muster_deadline else None
        body = self._sms(
            d.responder,
            "upgrade" if upgrade else "request",
            incident,
            code=shown_code(req.reply_code),
            link=self.link(req.id),
            muster_min=round(muster_s / 60) if muster_s else 0,
        )
        if entries is not None:
            list_link = f"{self.link(req.id)}/list"
            block = transfers.render_block(
                self.renderer, entries, d.responder.language, list_link, d.channel
            )
            body = transfers.choose_block(body, block)
        return Message(
            f"request:{req.id}:{d.channel}",
            d.channel,
            d.address,
            body,
            incident.id,
            d.responder.key,
            ack_token=self.token(req.id),
        )

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


def shown_code(reply_code: str) -> str:
    """The code an ask shows: "1" for the person's only open request (code 11 when it
    was asked; see ``model.FIRST_REPLY_CODE``), else the request's own code."""
    return BARE_REPLY if reply_code == str(FIRST_REPLY_CODE) else reply_code
