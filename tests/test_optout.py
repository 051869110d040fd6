"""Residents opt out of public tips (退订): "TD"/"退订"/"STOP" from an audience number removes
it from every audience, is remembered against re-imports, and is confirmed once."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import DEMO, PUBLIC_URL, T0, sign
from warnbot.app import App
from warnbot.fakes.twilio import FakeTwilio
from warnbot.ingest import cap
from warnbot.rosters.audience import is_opt_out
from warnbot.web import make_app

URL = f"{PUBLIC_URL}/hooks/twilio/sms"
FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()
RESIDENT = "+8617000002001"  # invented, as the demo audience's
RESIDENTS = {RESIDENT: "449901001001", "+8617000002002": "449901001001"}
PATH_SECRET = "smsup-path-secret-0123456789abcdef0123456789"


@pytest.mark.parametrize("text", ["TD", "td", "ＴＤ", " TD。", "退订", "STOP", "Unsubscribe", "T"])
def test_the_usual_opt_out_replies_are_recognised(text: str) -> None:
    assert is_opt_out(text)


@pytest.mark.parametrize("text", ["1", "收到", "TD已转移", "stop by later", "退订了吗？", ""])
def test_other_replies_are_not_opt_outs(text: str) -> None:
    assert not is_opt_out(text)


@pytest.fixture
async def client(app: App, aiohttp_client: Any) -> TestClient:
    await app.store.replace_audience("示例县居民", RESIDENTS, "test", T0)
    await app.store.replace_audience("一镇居民", {RESIDENT: "449901001001"}, "test", T0)
    app.settings = app.settings.model_copy(
        update={"channels": {**app.settings.channels, "aliyun": {"inbound_secret": PATH_SECRET}}}
    )
    return await aiohttp_client(make_app(app))


async def _sent_to(app: App, fake: FakeTwilio, phone: str) -> list[str]:
    while await app.pump():
        pass
    return [m.body or "" for m in fake.messages if m.to == phone]


async def test_a_td_reply_leaves_every_audience_and_is_confirmed_once(
    app: App, client: TestClient, fake_twilio: FakeTwilio
) -> None:
    form = {"From": RESIDENT, "Body": "TD", "MessageSid": "SM" + "d" * 32}
    for _ in range(2):  # Twilio retries the same message
        resp = await client.post("/hooks/twilio/sms", data=form, headers=sign(URL, form))
        assert resp.status == 200 and "<Message>" not in await resp.text()
    assert await app.store.audience_sizes() == {"一镇居民": 0, "示例县居民": 1}
    assert await app.store.opted_out(RESIDENT) == T0
    (confirmation,) = await _sent_to(app, fake_twilio, RESIDENT)
    assert confirmation.startswith("您已退订提示短信")


async def test_an_aliyun_push_of_tui_ding_opts_out_and_confirms_by_sms(
    app: App, client: TestClient, fake_twilio: FakeTwilio
) -> None:
    item = {"phone_number": RESIDENT[3:], "content": "退订", "send_time": "2026-08-15 14:20:00"}
    resp = await client.post(f"/hooks/aliyun/sms/{PATH_SECRET}", json=[item | {"sequence_id": 9}])
    assert resp.status == 200
    assert (await app.store.audience_sizes())["示例县居民"] == 1
    assert len(await _sent_to(app, fake_twilio, RESIDENT)) == 1


async def test_a_reimport_leaves_the_opted_out_number_out_unless_it_says_so(
    app: App, client: TestClient
) -> None:
    await app.sms_reply(RESIDENT, "退订")
    assert await app.store.replace_audience("示例县居民", RESIDENTS, "again", T0) == 1
    assert (await app.store.audience_sizes())["示例县居民"] == 1
    back = await app.store.replace_audience("示例县居民", RESIDENTS, "consent", T0, True)
    assert back == 2 and await app.store.opted_out(RESIDENT) is None
    assert await app.store.replace_audience("示例县居民", RESIDENTS, "later", T0) == 2


async def test_no_tip_reaches_a_number_that_opted_out(
    app: App, client: TestClient, fake_twilio: FakeTwilio
) -> None:
    await app.sms_reply(RESIDENT, "TD")
    app.settings = app.settings.model_copy(update={"tips_audience": "示例县居民"})
    await app.ingest("demo", cap.parse(FEED))
    tips = [b for b in await _sent_to(app, fake_twilio, "+8617000002002") if "提示】" in b]
    assert len(tips) == 1 and tips[0].endswith("回复TD退订")
    assert [b for b in await _sent_to(app, fake_twilio, RESIDENT) if "提示】" in b] == []


async def test_a_responsible_persons_td_is_read_as_any_other_reply(
    app: App, client: TestClient
) -> None:
    """Not in an audience: 叫应 cannot be opted out of; the answer lists the open code."""
    await app.ingest("demo", cap.parse(FEED))
    answer = await app.sms_reply(app.people["V01"].phones[0], "TD")
    assert '"11"' in answer and await app.store.opted_out(app.people["V01"].phones[0]) is None
