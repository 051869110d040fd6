"""Signed ack links: the page shows, the button confirms, forged tokens find nothing."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import DEMO, Clock
from warnbot import links
from warnbot.app import App
from warnbot.ingest import cap
from warnbot.web import make_app

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()


@pytest.fixture
async def client(app: App, aiohttp_client: Any) -> TestClient:
    await app.ingest("demo", cap.parse(FEED))
    return await aiohttp_client(make_app(app))


def _path(app: App, request_id: int) -> str:
    return "/a/" + links.sign(request_id, app.link_secret)


async def test_opening_a_link_shows_the_warning_and_confirms_nothing(
    app: App, client: TestClient
) -> None:
    resp = await client.get(_path(app, 1))
    html = await resp.text()
    assert resp.status == 200 and "示例县气象台发布暴雨橙色预警信号" in html
    assert "<button" in html and "Ⅱ级响应" in html
    assert (await app.store.request(1)).status == "pending"  # type: ignore[union-attr]


async def test_pressing_the_button_confirms_once(app: App, client: TestClient) -> None:
    for _ in range(2):
        resp = await client.post(_path(app, 1))
        assert resp.status == 200 and "已确认收到" in await resp.text()
    req = await app.store.request(1)
    assert req is not None and req.status == "confirmed"


async def test_a_confirmation_after_the_window_is_marked_late(
    app: App, client: TestClient, clock: Clock
) -> None:
    clock.advance(60)
    html = await (await client.post(_path(app, 2))).text()
    assert "逾时确认" in html


@pytest.mark.parametrize("token", ["1.AAAAAAAAAAAA", "1", "zzzz.x", "-1.abc", "%E4%B8%AD.x"])
async def test_a_forged_or_malformed_token_finds_nothing(
    app: App, client: TestClient, token: str
) -> None:
    assert (await client.post(f"/a/{token}")).status == 404
    assert "confirmed" not in {r.status for r in await app.store.requests_of(1)}


async def test_a_token_signed_with_another_key_finds_nothing(app: App, client: TestClient) -> None:
    resp = await client.post("/a/" + links.sign(1, "some-other-secret"))
    assert resp.status == 404


async def test_the_link_page_escapes_what_it_shows(app: App, client: TestClient) -> None:
    from tests.factories import incident

    hostile = incident(app.clock(), region="449901001")
    hostile = hostile.__class__(**{**hostile.__dict__, "headline": "<script>alert(1)</script>"})
    opened = await app.store.open_incident(hostile, None)
    (req, *_) = await app.notify(opened)
    html = await (await client.get(_path(app, req.id))).text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
