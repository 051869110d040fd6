"""Failover: a person's addresses, in order, and which one a failed message tries next.

A person is reached through every address the roster holds for them, in the
order of ``failover_order`` (settings): by default each phone by SMS, then each
phone by voice call, then their chat ids — Telegram (a private chat), then the
group bots (WeCom, DingTalk, Feishu, Slack: a message in the person's group,
@mentioning them). When one address fails for good, or runs out of retries,
the same message goes to the next address not tried for it and not blocked for
the person; only with none left is the person unreachable. Pure functions: the
App reads the store and renders.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from warnbot import regions
from warnbot.model import Responder
from warnbot.settings import GroupRoute

SMS_CHANNELS = frozenset({"twilio", "aliyun", "console"})
GROUP_BOTS = frozenset({"wecom", "dingtalk", "feishu", "slack"})


@dataclass(frozen=True)
class Address:
    """Where one message can go: a channel, the address on it, and the template family
    its text is rendered from (``sms``, ``voice`` or ``chat``)."""

    channel: str
    to: str
    family: str
    mentions: tuple[str, ...] = ()


def family(channel: str) -> str:
    """The template family of a channel's messages."""
    if channel == "voice":
        return "voice"
    return "sms" if channel in SMS_CHANNELS else "chat"


def addresses(
    person: Responder,
    order: Sequence[str],
    sms_channel: str,
    configured: Collection[str],
    groups: Iterable[GroupRoute] = (),
    asks: bool = True,
) -> list[Address]:
    """Every address of ``person`` on a configured channel, in failover ``order``.
    Voice only for asks (a call asks for 1; a report has no call to make)."""
    found: list[Address] = []
    routes = list(groups)
    for entry in order:
        if entry == "sms" and sms_channel in configured:
            found += [Address(sms_channel, p, "sms") for p in person.phones]
        elif entry == "voice" and asks and "voice" in configured:
            found += [Address("voice", p, "voice") for p in person.phones]
        elif (chat_id := person.chat_id(entry)) is not None and entry in configured:
            found += _chat(person, entry, chat_id, routes)
    return found


def _chat(person: Responder, channel: str, chat_id: str, routes: list[GroupRoute]) -> list[Address]:
    """Telegram writes to the person's own chat; a group bot writes in the first group
    routed for the person's tier and region, @mentioning them."""
    if channel not in GROUP_BOTS:
        return [Address(channel, chat_id, "chat")]
    for route in routes:
        in_region = not route.region_code or regions.related(route.region_code, person.region_code)
        if route.channel == channel and person.tier in route.tiers and in_region:
            return [Address(channel, route.group, "chat", (chat_id,))]
    return []


def next_address(
    ordered: Sequence[Address],
    tried: Collection[tuple[str, str]],
    blocked: Collection[tuple[str, str]],
) -> Address | None:
    """The first address not yet tried for this message and not blocked for the person."""
    for address in ordered:
        pair = (address.channel, address.to)
        if pair not in tried and pair not in blocked:
            return address
    return None


def base_key(key: str) -> str:
    """The key of the message a failover chain started from."""
    return key.split("|", 1)[0]


def alt_key(key: str, address: Address) -> str:
    """The idempotency key of ``key``'s message sent to ``address`` instead: deciding
    the same failover twice (a failed send and its delivery report) enqueues once."""
    mention = f":{address.mentions[0]}" if address.mentions else ""
    return f"{base_key(key)}|alt:{address.channel}:{address.to}{mention}"
