"""Feeds that arrive: MQTT from the real Mosquitto broker, pushes, and silence."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from typing import Any

import aiomqtt
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import DEMO, T0, Clock
from warnbot.app import App
from warnbot.fakes.twilio import FakeTwilio
from warnbot.ingest import mqtt
from warnbot.rules import ThresholdRule
from warnbot.settings import FeedSettings
from warnbot.web import make_app

TOKEN = "push-token-for-tests-only"
MAPPING = {
    "items": "readings",
    "station": "id",
    "quantity": {"const": "water_level"},
    "value": "v",
    "unit": {"const": "m"},
    "time": "t",
    "region_code": "region",
}
RULE = ThresholdRule.model_validate(
    {
        "name": "示例站超警戒",
        "hazard": "洪水",
        "quantity": "water_level",
        "region_code": "449901",
        "above": 5.0,
        "level": "Ⅲ",
    }
)


def _readings(*values: float, minute: int = 0) -> bytes:
    return json.dumps(
        {
            "readings": [
                {
                    "id": "st-1",
                    "v": v,
                    "t": f"2026-08-15T14:{minute + i:02d}:00+08:00",
                    "region": "449901001",
                }
                for i, v in enumerate(values)
            ]
        }
    ).encode()


def _with_feeds(app: App, *feeds: FeedSettings, rules: list[Any] | None = None) -> None:
    update: dict[str, Any] = {"feeds": list(feeds)}
    if rules is not None:
        update["rules"] = rules
    app.settings = app.settings.model_copy(update=update)


async def _until(check: Any, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():  # noqa: ASYNC110 — polling the store, no event to wait on
            await asyncio.sleep(0.05)


async def test_sensor_readings_over_mqtt_open_an_incident_and_bad_ones_are_recorded(
    app: App, clock: Clock
) -> None:
    clock.now = T0.replace(hour=6, minute=30)
    topic = f"warnbot-test/{secrets.token_hex(4)}/level"
    feed = FeedSettings(name="sensors", url=f"mqtt://127.0.0.1:1883/{topic}", mapping=MAPPING)
    _with_feeds(app, feed, rules=[RULE])
    ready = asyncio.Event()
    task = asyncio.create_task(mqtt.subscribe(app, feed, ready))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        async with aiomqtt.Client("127.0.0.1", 1883) as client:
            await client.publish(topic, b"{not json", qos=1)
            await client.publish(topic, _readings(4.2, 5.3), qos=1)

            async def opened() -> bool:
                return bool(await app.store.open_incidents())

            await _until(opened)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    ((incident, _),) = await app.store.open_incidents()
    assert (incident.hazard, incident.level.roman) == ("洪水", "Ⅲ")
    (health,) = await app.store.feed_health()
    assert health["last_error"] and "JSON" in health["last_error"]
    assert health["last_success"] is not None


async def test_a_lost_broker_is_a_health_entry_not_a_crash(app: App) -> None:
    feed = FeedSettings(name="dead-broker", url="mqtt://127.0.0.1:9/x", mapping=MAPPING)
    task = asyncio.create_task(mqtt.subscribe(app, feed))

    async def failed() -> bool:
        state = await app.store.feed_state("dead-broker")
        return bool(state and state["failures"])

    try:
        await _until(failed)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


@pytest.fixture
async def pushing(app: App, aiohttp_client: Any) -> TestClient:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    _with_feeds(
        app,
        FeedSettings(name="upstream", url="push:", push_token_sha256=digest),
        FeedSettings(
            name="gauges", url="push:", format="json", mapping=MAPPING, push_token_sha256=digest
        ),
        rules=[*app.settings.rules, RULE],
    )
    return await aiohttp_client(make_app(app))


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_pushed_cap_document_opens_an_incident(app: App, pushing: TestClient) -> None:
    cap = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()
    resp = await pushing.post("/api/feeds/upstream", data=cap, headers=_auth())
    assert resp.status == 200
    assert await resp.json() == {"accepted": 1, "transitions": ["open 暴雨@449901"]}


async def test_pushed_readings_are_taken_like_polled_ones(
    app: App, pushing: TestClient, clock: Clock
) -> None:
    clock.now = T0.replace(hour=6, minute=30)
    resp = await pushing.post("/api/feeds/gauges", data=_readings(5.1), headers=_auth())
    assert (await resp.json())["transitions"] == ["open 洪水@449901"]


@pytest.mark.parametrize(
    "headers,status", [({}, 401), (_auth("wrong"), 403), ({"Authorization": "Basic eA=="}, 401)]
)
async def test_a_push_without_the_token_is_refused_and_changes_nothing(
    app: App, pushing: TestClient, headers: dict[str, str], status: int
) -> None:
    cap = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()
    resp = await pushing.post("/api/feeds/upstream", data=cap, headers=headers)
    assert resp.status == status
    assert await app.store.open_incidents() == []


async def test_a_push_to_an_unknown_feed_is_not_found(pushing: TestClient) -> None:
    assert (await pushing.post("/api/feeds/nope", data=b"x", headers=_auth())).status == 404


async def test_a_malformed_push_is_a_400_and_a_health_entry(app: App, pushing: TestClient) -> None:
    resp = await pushing.post("/api/feeds/upstream", data=b"<alert><oops", headers=_auth())
    assert resp.status == 400 and "error" in await resp.json()
    state = await app.store.feed_state("upstream")
    assert state is not None and state["failures"] == 1


async def test_a_silent_feed_alerts_the_duty_officer_once_per_silence(
    app: App, clock: Clock, fake_twilio: FakeTwilio
) -> None:
    _with_feeds(
        app, FeedSettings(name="cma", url="https://cap.example/feed.xml", silent_after_s=600)
    )
    assert await app.report_silent_feeds() == []
    clock.advance(601)
    (silence,) = await app.report_silent_feeds()
    assert silence.feed == "cma"
    assert await app.report_silent_feeds() == []  # the same silence: told once
    await app.pump()
    duty = app.people["D01"].phones[0]
    (alert,) = [m for m in fake_twilio.messages if m.to == duty]
    assert "cma 已10分钟无有效数据" in (alert.body or "")
    await app.store.feed_ok("cma", clock())
    clock.advance(601)
    assert len(await app.report_silent_feeds()) == 1  # a new silence after a success
