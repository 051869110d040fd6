"""The manual response's preview: what confirming would really send, message by message.

Every ask is composed as ``App.notify`` composes it — the person's own template
for the SMS channel (``sms-aliyun/`` when Aliyun), their next reply code, an ack
link of the real length, the muster line, the 转移清单 block, 【演练】 for a drill —
then the chat-group notices and the public tip SMS. From those texts come the
SMS segments, the cost at ``price_per_segment`` and the time to send at each
channel's rate limit. Nothing is written.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from warnbot import drills, links, sms, transfers
from warnbot.app import App, shown_code
from warnbot.console.actions import Manual, Scope, check, choose
from warnbot.console.boardview import region_name
from warnbot.model import Delivery, Incident, next_reply_code
from warnbot.plan import plan
from warnbot.settings import RateLimit
from warnbot.slots import buckets_for
from warnbot.store.accounts import ConsoleStore

KINDS = ("ask", "group", "tip")  # the order messages leave in: asks, group notices, then tips


@dataclass(frozen=True)
class Draft:
    """One message as it would be sent: its tier (the label), text and destination."""

    label: str
    body: str
    address: str


@dataclass(frozen=True)
class Line:
    """One kind of message on one channel, with what it costs and how long it takes."""

    kind: str  # ask | group | tip
    channel: str
    samples: tuple[tuple[str, str], ...]  # (tier or "", text): the first message of each tier
    messages: int
    segments: tuple[int, ...]  # each message's SMS parts (empty for chat channels)
    price_per_segment: float  # 0: no price configured
    done_s: float | None  # when the channel's last message of this line leaves; None: no limit

    @property
    def segment_total(self) -> int:
        return sum(self.segments)

    @property
    def segment_range(self) -> tuple[int, int]:
        return (min(self.segments), max(self.segments)) if self.segments else (0, 0)

    @property
    def cost(self) -> float:
        return self.segment_total * self.price_per_segment


@dataclass
class Preview:
    """What confirming would send: drafts, people per tier and channel, and each line."""

    scopes: list[Scope]
    merged: list[tuple[str, str]] = field(default_factory=list)  # (inner, outer) region names
    once: dict[str, str] = field(default_factory=dict)  # person asked once → under which region
    people: Counter[tuple[str, str]] = field(default_factory=Counter)  # (tier, channel) → n
    lines: list[Line] = field(default_factory=list)
    already_open: list[str] = field(default_factory=list)

    @property
    def incidents(self) -> list[Incident]:
        return [s.draft for s in self.scopes]

    @property
    def total(self) -> int:
        return sum(self.people.values())

    @property
    def cost(self) -> float:
        return sum(line.cost for line in self.lines)

    @property
    def done_s(self) -> float | None:
        """When the last message leaves (None when some channel has no rate limit)."""
        times = [line.done_s for line in self.lines]
        return None if not times or None in times else max(t for t in times if t is not None)


async def build(app: App, store: ConsoleStore, m: Manual, actor: str) -> Preview:
    """The preview of manual response ``m``; ActionError when it cannot be sent."""
    check(app, m)
    choice = choose(app, m, f"console:{actor}")
    chosen = choice.scopes
    open_keys = {i.key for i, _ in await app.store.open_incidents()}
    already = [s.draft.key for s in chosen if s.draft.key in open_keys]
    name = functools.partial(region_name, app.regions)
    merged = [(name(inner), name(outer)) for inner, outer in choice.merged]
    once = {
        app.people[key].name: name(code)
        for s in chosen
        for key, code in s.asked_elsewhere.items()
        if key in app.people
    }
    result = Preview(chosen, merged, once, already_open=already)
    texts: dict[tuple[str, str], list[Draft]] = defaultdict(list)
    asked = [(s.draft, _deliveries(app, s)) for s in chosen]
    keys = [d.responder.key for _, ds in asked for d in ds]
    bodies = await _ask_bodies(app, store, asked, await store.taken_codes(keys))
    for (draft, deliveries), drafted in zip(asked, bodies, strict=True):
        for d, body in zip(deliveries, drafted, strict=True):
            result.people[(d.tier.value, d.channel)] += 1
            texts[("ask", d.channel)].append(Draft(d.tier.value, body, d.address))
        for message in app._group_messages(draft, deliveries):  # as App.notify makes them
            tier = message.key.split(":")[4]  # group:incident:channel:group:tier:level
            texts[("group", message.channel)].append(Draft(tier, message.body, message.to))
        await _tips(app, store, draft, texts)
    result.lines = _lines(app, texts)
    return result


def _deliveries(app: App, scope: Scope) -> list[Delivery]:
    everyone = plan(scope.draft, app.people.values(), app.settings.sms_channel, app.clock())
    return [d for d in everyone if d.responder.key not in scope.asked_elsewhere]


async def _ask_bodies(
    app: App,
    store: ConsoleStore,
    asked: Sequence[tuple[Incident, list[Delivery]]],
    taken: dict[str, set[str]],
) -> list[list[str]]:
    """Each person's ask, with the reply code and a link as long as theirs will be.

    The link is signed with a throwaway key: it has the real shape but confirms nothing.
    """
    next_id = await store.last_request_id()
    throwaway = links.new_secret()
    out = []
    for draft, deliveries in asked:
        lists = await _transfer_lists(app, draft, deliveries)
        bodies = []
        for d in deliveries:
            next_id += 1
            codes = taken.setdefault(d.responder.key, set())
            code = next_reply_code(codes)  # as the store will number the request
            codes.add(code)
            link = f"{app.public_url}/a/{links.sign(next_id, throwaway)}"
            entries = lists.get(d.responder.key, [])
            bodies.append(ask_text(app, draft, d, shown_code(code), link, entries))
        out.append(bodies)
    return out


def ask_text(
    app: App,
    incident: Incident,
    d: Delivery,
    code: str,
    link: str,
    entries: Sequence[transfers.TransferEntry],
) -> str:
    """One person's ask, composed as ``App.notify`` composes it."""
    muster_s = d.policy.muster_s if d.policy and d.muster_deadline else None
    muster_min = round(muster_s / 60) if muster_s else 0
    body = app._sms(d.responder, "request", incident, code=code, link=link, muster_min=muster_min)
    if entries:
        block = transfers.render_block(
            app.renderer, entries, d.responder.language, f"{link}/list", d.channel
        )
        body = transfers.choose_block(body, block)
    return body


async def _transfer_lists(
    app: App, incident: Incident, deliveries: Sequence[Delivery]
) -> dict[str, list[transfers.TransferEntry]]:
    if not transfers.calls_for_transfer(incident.policy):
        return {}
    lists: dict[str, list[transfers.TransferEntry]] = defaultdict(list)
    for entry in await app.store.transfer_list(d.responder.key for d in deliveries):
        lists[entry.responder_key].append(entry)
    return lists


async def _tips(
    app: App,
    store: ConsoleStore,
    draft: Incident,
    texts: dict[tuple[str, str], list[Draft]],
) -> None:
    """The public tip SMS ``App.send_tips`` would send: one per audience number."""
    name = app.settings.tips_audience
    if not name or not drills.reaches_public(draft):
        return
    n = await store.audience_count(name, [draft.region_code])
    body = app.renderer.render("sms", "tip", app.settings.language, incident=draft)
    # every number is another sender bucket: a shared address stands in for them all
    texts[("tip", app.settings.sms_channel)].extend(Draft("", body, f"tip:{i}") for i in range(n))


def _lines(app: App, texts: Mapping[tuple[str, str], list[Draft]]) -> list[Line]:
    """Lines in sending order; each rate-limit bucket's clock runs on through its lines."""
    pacer = Pacer(app.settings.rate_limits)
    lines = []
    for kind, channel in sorted(texts, key=lambda kc: (KINDS.index(kc[0]), kc[1])):
        drafts = texts[(kind, channel)]
        if not drafts:
            continue
        is_sms = channel == app.settings.sms_channel
        parts = tuple(sms.segments(d.body) for d in drafts) if is_sms else ()
        done = pacer.book(
            channel,
            [(d.address, p) for d, p in zip(drafts, parts or [1] * len(drafts), strict=True)],
        )
        account = app.settings.limit_for(channel)
        price = account.price_per_segment if account and is_sms else 0.0
        lines.append(Line(kind, channel, _firsts(drafts), len(drafts), parts, price, done))
    return lines


@dataclass
class Pacer:
    """When messages leave under the rate limits, as the dispatcher books them: each
    message draws on every bucket naming its channel (``slots.buckets_for``: an account
    shared by several channels, a bucket named unlike its channel, one bucket per
    destination for ``per_sender``), and leaves when the slowest of them lets it."""

    limits: Mapping[str, RateLimit]
    units: Counter[str] = field(default_factory=Counter)  # bucket key → units booked so far

    def book(self, channel: str, sends: Sequence[tuple[str, int]]) -> float | None:
        """Book ``sends`` (address, SMS parts) on ``channel``; seconds from the start
        until the last of them leaves, None when no limit paces the channel."""
        done: float | None = None
        for address, parts in sends:
            for bucket in buckets_for(self.limits, channel, address):
                self.units[bucket.key] += parts if bucket.limit.per_segment else 1
                at_s = self.units[bucket.key] / bucket.limit.effective_per_s
                done = at_s if done is None else max(done, at_s)
        return done


def _firsts(drafts: Sequence[Draft]) -> tuple[tuple[str, str], ...]:
    """The first text of each label (tier), in the order the labels first appear."""
    first: dict[str, str] = {}
    for d in drafts:
        first.setdefault(d.label, d.body)
    return tuple(first.items())
