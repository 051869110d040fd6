"""Escalate: the 叫应 ladder for silence, as a pure function of time.

For a request still unanswered at its deadline: ask again, up to the tier's
``repeat_count`` times ``repeat_interval_s`` apart; after the last repeat's
interval, tell the person's superior (or the duty officer) that they are
silent. Each step has a unique key, so a tick repeated — or run by two
processes — fires nothing twice; after a long pause only the latest repeat
is sent, not a burst of the missed ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from warnbot.model import Request, Step, TierPolicy


def escalate(
    pending: Iterable[tuple[Request, TierPolicy]],
    superior_of: Mapping[str, str | None],
    fired: frozenset[str],
    now: datetime,
) -> list[Step]:
    """The steps due at ``now`` that have not fired yet."""
    steps = (_due(req, policy, superior_of.get(req.responder_key), now) for req, policy in pending)
    return [s for s in steps if s is not None and s.key not in fired]


def _due(req: Request, policy: TierPolicy, superior: str | None, now: datetime) -> Step | None:
    if req.status != "pending" or now < req.deadline:
        return None
    overdue_s = (now - req.deadline).total_seconds()
    if overdue_s >= policy.repeat_count * policy.repeat_interval_s:
        return Step(
            f"superior:{req.id}",
            "superior",
            req.incident_id,
            req.id,
            req.responder_key,
            target_key=superior,
        )
    n = int(overdue_s // policy.repeat_interval_s) + 1
    return Step(f"repeat:{req.id}:{n}", "repeat", req.incident_id, req.id, req.responder_key, n=n)
