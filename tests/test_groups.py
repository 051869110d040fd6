"""Chat groups hear about an incident once per tier, with that tier's persons @mentioned."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.conftest import DEMO
from warnbot.app import App
from warnbot.channels import CHANNELS
from warnbot.ingest import cap
from warnbot.settings import GroupRoute

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()


async def test_a_group_gets_one_message_per_tier_mentioning_those_asked(
    app: App, aiohttp_server: Any
) -> None:
    received: list[dict[str, Any]] = []

    async def take(request: web.Request) -> web.Response:
        received.append(json.loads(await request.read()))
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/group", take)
    server = await aiohttp_server(receiver)
    app.settings = app.settings.model_copy(
        update={
            "channels": {
                "webhook": {"groups": {"county_duty": {"url": str(server.make_url("/group"))}}}
            },
            "groups": [
                GroupRoute(
                    channel="webhook",
                    group="county_duty",
                    tiers=["county", "township"],
                    region_code="449901",
                )
            ],
        }
    )
    app.channels["webhook"] = CHANNELS["webhook"](app.settings)
    await app.ingest("demo", cap.parse(FEED))
    await app.pump()
    by_tier = {("县级" if "县级" in m["text"] else "乡镇级"): m for m in received}
    assert len(received) == 2 and set(by_tier) == {"县级", "乡镇级"}
    assert sorted(by_tier["县级"]["mentions"]) == sorted(
        app.people[k].phones[0] for k in ("X01", "X02")
    )
    assert len(by_tier["乡镇级"]["mentions"]) == 3
    assert "各自回复短信确认" in by_tier["县级"]["text"]


async def test_a_group_for_another_region_hears_nothing(app: App) -> None:
    app.settings = app.settings.model_copy(
        update={
            "groups": [
                GroupRoute(
                    channel="webhook", group="elsewhere", tiers=["county"], region_code="440100"
                )
            ]
        }
    )
    await app.ingest("demo", cap.parse(FEED))
    assert await app.store.outbox_counts() == {"queued": 12}  # 11 asks, 1 duty alert
