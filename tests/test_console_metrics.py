"""/metrics reads what is new, not whole tables: acks are folded into shared totals as
they come, outbox rows once settled, each exactly once even when several processes
scrape at the same moment; the histogram of time to confirm keeps its buckets."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from tests.conftest import Clock
from tests.console_helpers import confirm_by_link, open_manual
from warnbot.app import App
from warnbot.store.accounts import ConsoleStore
from warnbot.store.metricsfold import SETTLE_S
from warnbot.store.tables import acks, metric_marks, outbox

pytest_plugins = ("tests.console_fixtures",)


async def _scrape(client: TestClient) -> str:
    return await (await client.get("/metrics")).text()


async def _one_confirmed(app: App, client: TestClient, officer: str) -> int:
    """A manual response sent, and V01's confirmation by link; the incident's id."""
    incident_id = await open_manual(client, officer)
    await app.pump()
    await confirm_by_link(app, incident_id, "V01")
    return incident_id


async def test_settled_rows_are_counted_once_and_never_read_again(
    app: App, client: TestClient, officer: str, clock: Clock
) -> None:
    incident_id = await _one_confirmed(app, client, officer)
    sent = 'warnbot_messages_total{channel="twilio",outcome="sent"} 11.0'  # asks and 值班提示
    link = 'warnbot_acks_total{path="link"} 1.0'
    first = await _scrape(client)
    assert sent in first and link in first
    clock.advance(SETTLE_S + 1)
    assert sent in await _scrape(client)  # now folded into the totals
    async with app.store.engine.begin() as conn:
        marks = dict((await conn.execute(sa.select(metric_marks))).all())
        assert marks["outbox"] > 0 and marks["acks"] > 0
        # rows already counted are not read again: changing them changes nothing
        await conn.execute(outbox.update().values(provider_status="tampered"))
        await conn.execute(acks.update().values(path="tampered"))
    again = await _scrape(client)
    assert sent in again and link in again and "tampered" not in again
    await confirm_by_link(app, incident_id, "V02")
    assert 'warnbot_acks_total{path="link"} 2.0' in await _scrape(client)


async def test_scrapes_at_the_same_moment_count_each_row_once(
    app: App, client: TestClient, officer: str, clock: Clock
) -> None:
    await _one_confirmed(app, client, officer)
    clock.advance(SETTLE_S + 1)
    stores = [ConsoleStore(app.store.engine) for _ in range(3)]
    results = await asyncio.gather(*(s.metric_figures(app.clock()) for s in stores))
    figures = await stores[0].metric_figures(app.clock())
    assert figures.acks == {"link": 1}
    assert figures.messages[("twilio", "sent")] == 11  # ten asks and the 值班提示
    assert all(r.acks["link"] <= 1 for r in results)


async def test_time_to_confirm_lands_in_its_bucket_per_tier(
    app: App, client: TestClient, officer: str, clock: Clock
) -> None:
    incident_id = await open_manual(client, officer)
    clock.advance(45)
    await confirm_by_link(app, incident_id, "V01")
    text = await _scrape(client)
    assert 'warnbot_time_to_confirm_seconds_bucket{le="30",tier="village"} 0.0' in text
    assert 'warnbot_time_to_confirm_seconds_bucket{le="60",tier="village"} 1.0' in text
    assert 'warnbot_time_to_confirm_seconds_bucket{le="+Inf",tier="village"} 1.0' in text
    assert 'warnbot_time_to_confirm_seconds_sum{tier="village"} 45.0' in text
