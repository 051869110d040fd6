"""The ladder's clock: each tick fires the escalation steps due (``escalate`` is
the pure part) and turns them into messages — reminders, calls, reports of the
silent to their superior or the duty officer, late musters, the unreachable.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

from warnbot import drills, dutyalerts, log
from warnbot.asking import shown_code
from warnbot.core import Core
from warnbot.escalate import escalate, muster_overdue
from warnbot.model import Incident, Message, Request, Step

# Ladder steps that report people to someone, and the SMS template each uses.
REPORTS = {"superior": "silent", "duty_officer": "duty", "muster": "muster_late"}

_log = log.get(__name__)


class Steps(Core):
    """Mixed into ``App``; see the module's notes."""

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
