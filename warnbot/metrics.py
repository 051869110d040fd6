"""``GET /metrics``: Prometheus text exposition, every series named ``warnbot_…``.

The figures are read from the database at each scrape, not counted in this
process, so every process sharing the database reports the same totals and a
restart loses nothing. The snapshot is taken asynchronously and handed to a
prometheus-client collector in a registry of its own.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from warnbot.app import App
from warnbot.store.accounts import ConsoleStore
from warnbot.web.keys import APP

# Seconds from asking a person to their answer: a village head answers in minutes.
CONFIRM_BUCKETS_S = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0)


@dataclass
class Snapshot:
    messages: list[tuple[str, str, int]] = field(default_factory=list)
    acks: list[tuple[str, int]] = field(default_factory=list)
    delays: list[tuple[str, float]] = field(default_factory=list)
    feeds: list[dict[str, Any]] = field(default_factory=list)
    configured_feeds: list[str] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)
    open_incidents: int = 0


async def snapshot(app: App) -> Snapshot:
    store = ConsoleStore(app.store.engine)
    return Snapshot(
        messages=await store.message_counts(),
        acks=await store.ack_counts(),
        delays=await store.confirm_delays(),
        feeds=await app.store.feed_health(),
        configured_feeds=[f.name for f in app.settings.feeds],
        outbox=await app.store.outbox_counts(),
        open_incidents=len(await app.store.open_incidents()),
    )


class SnapshotCollector(Collector):
    """Turns one snapshot into metric families."""

    def __init__(self, s: Snapshot) -> None:
        self.s = s

    def collect(self) -> Iterator[Metric]:
        yield from (self._messages(), self._acks(), self._confirm())
        yield from self._feeds()
        depth = GaugeMetricFamily(
            "warnbot_outbox_depth", "Messages waiting in the outbox", labels=["status"]
        )
        for status in ("queued", "sending"):
            depth.add_metric([status], self.s.outbox.get(status, 0))
        yield depth
        yield GaugeMetricFamily(
            "warnbot_incidents_open", "Incidents open now", value=self.s.open_incidents
        )

    def _messages(self) -> Metric:
        family = CounterMetricFamily(
            "warnbot_messages",
            "Messages by channel and outcome (the provider's last word, else the outbox status)",
            labels=["channel", "outcome"],
        )
        for channel, outcome, n in self.s.messages:
            family.add_metric([channel, outcome], n)
        return family

    def _acks(self) -> Metric:
        family = CounterMetricFamily(
            "warnbot_acks", "Confirmations (叫应) by the path they came by", labels=["path"]
        )
        for path, n in self.s.acks:
            family.add_metric([path], n)
        return family

    def _confirm(self) -> Metric:
        family = HistogramMetricFamily(
            "warnbot_time_to_confirm_seconds",
            "Seconds from asking a person to their confirmation, per tier",
            labels=["tier"],
        )
        for tier in sorted({t for t, _ in self.s.delays}):
            values = sorted(d for t, d in self.s.delays if t == tier)
            buckets = [(f"{b:g}", bisect.bisect_right(values, b)) for b in CONFIRM_BUCKETS_S] + [
                ("+Inf", len(values))
            ]
            family.add_metric([tier], buckets, sum_value=sum(values))
        return family

    def _feeds(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "warnbot_feed_up", "1 when the feed's last poll succeeded", labels=["feed"]
        )
        failures = GaugeMetricFamily(
            "warnbot_feed_failures", "Consecutive failures of the feed", labels=["feed"]
        )
        last = GaugeMetricFamily(
            "warnbot_feed_last_success_timestamp_seconds",
            "When the feed last gave good data (Unix time)",
            labels=["feed"],
        )
        health = {h["name"]: h for h in self.s.feeds}
        for name in sorted(set(self.s.configured_feeds) | set(health)):
            h = health.get(name, {})
            n = int(h.get("failures") or 0)
            up.add_metric([name], 1.0 if h.get("last_success") and not n else 0.0)
            failures.add_metric([name], n)
            if h.get("last_success"):
                last.add_metric([name], h["last_success"].timestamp())
        yield from (up, failures, last)


def exposition(s: Snapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(s))
    return generate_latest(registry)


async def serve(request: web.Request) -> web.Response:
    body = exposition(await snapshot(request.app[APP]))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
