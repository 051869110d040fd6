"""Escalate: the 叫应 ladder for silence, as a pure function of time.

For a request still unanswered, in ladder order (``model.LADDER``):

- ``repeat``: from the deadline, ask again by SMS up to the tier's
  ``repeat_count`` times, ``repeat_interval_s`` apart, until the superior is told;
- ``voice``: from ``voice_after_s``, call, up to ``voice_count`` calls as far apart;
- ``superior``: at ``superior_after_s`` (default: after the last reminder's
  interval, and not before the first call) tell the person's superior — or the
  duty officer, when they have none — that they are silent;
- ``duty_officer``: at ``duty_officer_after_s`` tell the duty officer;
- ``unreachable``: at ``unreachable_after_s`` give up on the person.

Reminders count from the deadline, every other ``*_after_s`` from the ask.
Each step has a unique key, so a tick repeated — or run by two processes —
fires nothing twice; after a long pause only the latest reminder and the
latest call are due, not a burst of the missed ones, while reports to people
(superior, duty officer) are still made, once each. Confirmed, unreachable and
superseded requests, and the requests of lifted incidents, escalate no further.

A muster (集结) has one more step, ``muster`` (``muster_overdue``): when the
muster deadline passes with a person who answered "收到" but has not reported
arrival (到岗), their superior — or the duty officer — is told, once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime

from warnbot.model import Request, Step, TierPolicy

ACTIVE = frozenset({"pending", "delivered", "escalated"})  # states the ladder still climbs


def escalate(
    pending: Iterable[tuple[Request, TierPolicy]],
    superior_of: Mapping[str, str | None],
    fired: frozenset[str],
    now: datetime,
    lifted: Collection[int] = (),
) -> list[Step]:
    """The steps due at ``now`` that have not fired yet, each request's in ladder order."""
    return [
        step
        for req, policy in pending
        if req.status in ACTIVE and req.incident_id not in lifted
        for step in due(req, policy, superior_of.get(req.responder_key), now)
        if step.key not in fired
    ]


def due(req: Request, policy: TierPolicy, superior: str | None, now: datetime) -> list[Step]:
    """Every step of one request whose time has come at ``now`` (fired or not)."""
    since_s = (now - req.sent_at).total_seconds()
    overdue_s = (now - req.deadline).total_seconds()
    told = _superior_due(policy, since_s, overdue_s)
    gave_up = _reached(policy.unreachable_after_s, since_s)
    steps: list[Step] = []
    if not gave_up:
        n = _repeat(policy, overdue_s, told)
        if n:
            steps.append(_step(req, "repeat", f"repeat:{req.id}:{n}", n=n))
        n = _call(policy, since_s)
        if n:
            steps.append(_step(req, "voice", f"voice:{req.id}:{n}", n=n))
    if told:
        steps.append(_step(req, "superior", f"superior:{req.id}", target=superior))
    if _reached(policy.duty_officer_after_s, since_s):
        steps.append(_step(req, "duty_officer", f"duty_officer:{req.id}"))
    if gave_up:
        steps.append(_step(req, "unreachable", f"unreachable:{req.id}"))
    return steps


def _superior_due(policy: TierPolicy, since_s: float, overdue_s: float) -> bool:
    if policy.superior_after_s is None:  # after the last reminder's interval and the call
        return overdue_s >= policy.repeat_count * policy.repeat_interval_s and (
            policy.voice_after_s is None or since_s >= policy.voice_after_s
        )
    return since_s >= policy.superior_after_s


def _reached(after_s: float | None, since_s: float) -> bool:
    return after_s is not None and since_s >= after_s


def _repeat(policy: TierPolicy, overdue_s: float, told: bool) -> int:
    """The reminder whose slot ``now`` is in (1-based), or 0: none once the superior is told."""
    if told or overdue_s < 0 or overdue_s >= policy.repeat_count * policy.repeat_interval_s:
        return 0
    return min(int(overdue_s // policy.repeat_interval_s) + 1, policy.repeat_count)


def _call(policy: TierPolicy, since_s: float) -> int:
    """The call whose slot ``now`` is in (1-based), or 0; the last slot never closes, so a
    pause never skips the last call."""
    if policy.voice_after_s is None or policy.voice_count < 1 or since_s < policy.voice_after_s:
        return 0
    n = int((since_s - policy.voice_after_s) // policy.repeat_interval_s) + 1
    return min(n, policy.voice_count)


def muster_overdue(
    requests: Iterable[Request],
    superior_of: Mapping[str, str | None],
    fired: frozenset[str],
    now: datetime,
) -> list[Step]:
    """``muster:<id>`` steps due at ``now``: persons who answered but have not arrived by
    their muster deadline; the target is their superior (None: the duty officer)."""
    return [
        _step(r, "muster", f"muster:{r.id}", target=superior_of.get(r.responder_key))
        for r in requests
        if _on_the_way_late(r, now) and f"muster:{r.id}" not in fired
    ]


def _on_the_way_late(r: Request, now: datetime) -> bool:
    return (
        r.muster_deadline is not None
        and now >= r.muster_deadline
        and r.confirmed_at is not None
        and r.arrived_at is None
        and r.status != "superseded"
    )


def _step(req: Request, kind: str, key: str, n: int = 0, target: str | None = None) -> Step:
    return Step(key, kind, req.incident_id, req.id, req.responder_key, n=n, target_key=target)
