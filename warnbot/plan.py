"""Plan: who must be reached for an incident, on which channel, answering by when.

Pure. The incident's frozen policy says which tiers its level reaches and each
tier's ack window (and muster deadline, for the roles it musters); the roster
says who sits in those tiers in regions related to the incident's (its own
region, those inside it, and the offices above it).
Duty officers are not planned: they receive the ladder's escalations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from warnbot import regions
from warnbot.model import Delivery, Incident, Responder, Tier
from warnbot.settings import GroupRoute

DUTY_OFFICER = "duty_officer"


def plan(
    incident: Incident, people: Iterable[Responder], channel: str, now: datetime
) -> list[Delivery]:
    """One delivery per concerned person with a phone, top tier first."""
    deliveries = [_delivery(incident, p, channel, now) for p in people if _concerned(incident, p)]
    order = list(Tier)
    return sorted(deliveries, key=lambda d: (order.index(d.tier), d.responder.key))


def duty_officers(people: Iterable[Responder]) -> list[Responder]:
    """Who hears about silence that has no superior to go to."""
    return [p for p in people if DUTY_OFFICER in p.roles and p.phones]


def _concerned(incident: Incident, p: Responder) -> bool:
    return (
        p.tier in incident.policy.tiers
        and bool(p.phones)
        and DUTY_OFFICER not in p.roles
        and regions.related(incident.region_code, p.region_code)
    )


def _delivery(incident: Incident, p: Responder, channel: str, now: datetime) -> Delivery:
    policy = incident.policy.tiers[p.tier]
    window = timedelta(seconds=policy.ack_window_s)
    muster = now + timedelta(seconds=policy.muster_s or 0) if policy.musters(p.roles) else None
    return Delivery(p, channel, p.phones[0], p.tier, now + window, muster, incident.level, policy)


@dataclass(frozen=True)
class GroupNotice:
    """One message to one chat group about one tier of an incident."""

    channel: str
    group: str
    tier: Tier
    people: tuple[Responder, ...]


def group_notices(
    routes: Iterable[GroupRoute], incident: Incident, deliveries: Iterable[Delivery]
) -> list[GroupNotice]:
    """Per route and tier, the persons just asked: group bots get one message each,
    not one per person."""
    reached = list(deliveries)
    notices = []
    for route in routes:
        if route.region_code and not regions.related(route.region_code, incident.region_code):
            continue
        for tier in route.tiers:
            people = tuple(d.responder for d in reached if d.tier == tier)
            if people:
                notices.append(GroupNotice(route.channel, route.group, tier, people))
    return notices
