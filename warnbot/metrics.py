"""``GET /metrics``: Prometheus text exposition, every series named ``warnbot_…``.

The figures come from the database, not from counters in this process, so every
process sharing the database reports the same totals and a restart loses
nothing. A scrape does not scan whole tables: what no longer changes is folded
into shared totals once (``store/metricsfold.py``), so each scrape reads only
what is new. The snapshot is handed to a prometheus-client collector in a
registry of its own.
"""

from __future__ import annotations

import itertools
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
from warnbot.store.metricsfold import CONFIRM_BUCKETS_S, Figures
from warnbot.web.keys import APP


@dataclass
class Snapshot:
    figures: Figures = field(default_factory=Figures)
    feeds: list[dict[str, Any]] = field(default_factory=list)
    configured_feeds: list[str] = field(default_factory=list)


async def snapshot(app: App) -> Snapshot:
    return Snapshot(
        figures=await ConsoleStore(app.store.engine).metric_figures(app.clock()),
        feeds=await app.store.feed_health(),
        configured_feeds=[f.name for f in app.settings.feeds],
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
            depth.add_metric([status], self.s.figures.outbox_depth.get(status, 0))
        yield depth
        yield GaugeMetricFamily(
            "warnbot_incidents_open", "Incidents open now", value=self.s.figures.open_incidents
        )

    def _messages(self) -> Metric:
        family = CounterMetricFamily(
            "warnbot_messages",
            "Messages by channel and outcome (the provider's last word, else the outbox status)",
            labels=["channel", "outcome"],
        )
        for (channel, outcome), n in sorted(self.s.figures.messages.items()):
            family.add_metric([channel, outcome], n)
        return family

    def _acks(self) -> Metric:
        family = CounterMetricFamily(
            "warnbot_acks", "Confirmations (叫应) by the path they came by", labels=["path"]
        )
        for path, n in sorted(self.s.figures.acks.items()):
            family.add_metric([path], n)
        return family

    def _confirm(self) -> Metric:
        family = HistogramMetricFamily(
            "warnbot_time_to_confirm_seconds",
            "Seconds from asking a person to their confirmation, per tier",
            labels=["tier"],
        )
        figures = self.s.figures
        for tier, counts in sorted(figures.confirm_buckets.items()):
            running = list(itertools.accumulate(counts))
            bounds = [f"{b:g}" for b in CONFIRM_BUCKETS_S] + ["+Inf"]
            family.add_metric(
                [tier], list(zip(bounds, running, strict=True)), figures.confirm_sum_s[tier]
            )
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
