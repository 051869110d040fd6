"""CAP out through the app: each transition is kept, served and pushed downstream."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import DEMO, Clock
from tests.factories import incident
from warnbot.app import App
from warnbot.channels.cap_push import CapPush
from warnbot.evaluate import Transition
from warnbot.ingest import cap
from warnbot.model import Level
from warnbot.publish import publish_cap
from warnbot.settings import CapSettings, DownstreamSettings
from warnbot.web import make_app

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()


@pytest.fixture
async def downstream(aiohttp_server: Any) -> tuple[TestServer, list[tuple[str, bytes]]]:
    """A broadcast platform that takes CAP; the first POST fails with 503."""
    received: list[tuple[str, bytes]] = []
    calls = {"n": 0}

    async def take(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return web.Response(status=503)
        received.append((request.content_type, await request.read()))
        return web.Response(status=201)

    platform = web.Application()
    platform.router.add_post("/cap", take)
    return await aiohttp_server(platform), received


@pytest.fixture
def publishing(app: App, downstream: tuple[TestServer, Any]) -> App:
    server, _ = downstream
    target = DownstreamSettings(name="应急广播", url=str(server.make_url("/cap")))
    app.settings = app.settings.model_copy(
        update={
            "cap": CapSettings(
                sender="warnbot.example.org",
                issuer_region="449901",
                issuer_org="416",
                sender_name="示例县三防办",
            ),
            "downstream": [target],
        }
    )
    app.channels["cap"] = CapPush([target])
    return app


async def test_an_opened_incident_is_served_as_national_profile_cap(
    publishing: App, aiohttp_client: Any
) -> None:
    await publishing.ingest("demo", cap.parse(FEED))
    client = await aiohttp_client(make_app(publishing))
    resp = await client.get("/api/incidents/1/cap.xml")
    assert resp.status == 200 and resp.content_type == "application/cap+xml"
    doc = cap.parse(await resp.read())
    assert doc.msg_type == "Alert" and doc.sender == "warnbot.example.org"
    assert doc.identifier.startswith("449901416000") and doc.issuer_region == "449901"
    assert doc.geocode_values() == {"449901"}
    assert (await client.get("/api/incidents/99/cap.xml")).status == 404


async def test_the_document_reaches_downstream_even_after_a_503(
    publishing: App, downstream: tuple[TestServer, list[tuple[str, bytes]]], clock: Clock
) -> None:
    _, received = downstream
    await publishing.ingest("demo", cap.parse(FEED))
    await publishing.pump()
    assert received == []  # 503: retried later, not lost
    clock.advance(600)
    await publishing.pump()
    ((ctype, body),) = received
    assert ctype == "application/cap+xml" and cap.parse(body).msg_type == "Alert"


async def test_a_lift_publishes_a_cancel_that_references_the_alert(publishing: App) -> None:
    await publishing.ingest("demo", cap.parse(FEED))
    alert_ref, _ = await publishing.store.latest_cap(1) or ("", b"")
    cancel = (
        FEED.decode()
        .replace("_1</identifier>", "_2</identifier>")
        .replace(
            "<msgType>Alert</msgType>",
            "<msgType>Cancel</msgType><references>449901416000,"
            "44990141600000_20260815061500_1,2026-08-15T06:15:00+08:00</references>",
        )
    )
    (lift,) = await publishing.ingest("demo", cap.parse(cancel.encode()))
    assert lift.kind == "lift"
    _, xml = await publishing.store.latest_cap(1) or ("", b"")
    doc = cap.parse(xml)
    assert doc.msg_type == "Cancel" and doc.references == (alert_ref,)


async def _drill(app: App) -> int:
    draft = dataclasses.replace(incident(app.clock(), region="449901"), drill=True)
    opened = await app.store.open_incident(draft, None)
    await app.notify(opened)
    return opened.id


async def test_a_drill_upgraded_or_lifted_publishes_nothing_downstream(
    publishing: App, downstream: tuple[TestServer, list[tuple[str, bytes]]], clock: Clock
) -> None:
    _, received = downstream
    drill_id = await _drill(publishing)
    for kind, level in (("upgrade", Level.I), ("lift", Level.I)):
        t = Transition(kind, "暴雨@449901", "暴雨", "449901", level, "演练", "test", drill_id)
        await publishing.apply(t, None, source="test")
    for _ in range(2):
        await publishing.pump()
        clock.advance(600)
    assert received == []
    assert await publishing.store.latest_cap(drill_id) is None


async def test_publishing_a_drill_keeps_its_exercise_document_but_pushes_nothing(
    publishing: App, downstream: tuple[TestServer, list[tuple[str, bytes]]], clock: Clock
) -> None:
    _, received = downstream
    drill = await publishing.store.incident(await _drill(publishing))
    assert drill is not None
    doc = await publish_cap(publishing.store, publishing.settings, drill, "open", clock())
    assert doc is not None and b"<status>Exercise</status>" in doc.xml
    for _ in range(2):
        await publishing.pump()
        clock.advance(600)
    assert received == []
