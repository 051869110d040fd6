"""Warning calls: TwiML read in Mandarin, 1 pressed confirms through the signed webhook."""

from __future__ import annotations

from typing import Any

import defusedxml.ElementTree as ET

from tests.conftest import DEMO, PUBLIC_URL, sign
from warnbot.app import App
from warnbot.channels.twilio_voice import TwilioVoice
from warnbot.fakes.twilio import FakeTwilio
from warnbot.ingest import cap
from warnbot.model import Message
from warnbot.web import make_app

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()


def _voice(app: App) -> TwilioVoice:
    return TwilioVoice(
        app.settings.twilio.model_copy(update={"from_number": "+15005550006"}), PUBLIC_URL
    )


async def test_a_call_reads_the_warning_and_gathers_one_digit_for_its_request(
    app: App, fake_twilio: FakeTwilio
) -> None:
    voice = _voice(app)
    try:
        await voice.send(
            Message(
                "c1",
                "voice",
                "+8617000000401",
                "红色预警：示例县暴雨。",
                1,
                "V01",
                ack_token="1.abcdefabcdef",
            )
        )
    finally:
        await voice.aclose()
    (call,) = fake_twilio.calls
    root = ET.fromstring(call.twiml)
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert gather.get("action") == f"{PUBLIC_URL}/hooks/twilio/voice/1.abcdefabcdef"
    says = gather.findall("Say")
    assert len(says) == 2 and "红色预警" in (says[0].text or "")
    assert says[0].get("language") == "cmn-CN" and fake_twilio.rejected == []


async def _press(client: Any, token: str, digits: str, signed: bool = True) -> Any:
    url = f"{PUBLIC_URL}/hooks/twilio/voice/{token}"
    form = {"Digits": digits, "CallSid": "CA" + "0" * 32}
    return await client.post(
        f"/hooks/twilio/voice/{token}", data=form, headers=sign(url, form) if signed else {}
    )


async def test_pressing_1_confirms_that_request_only(app: App, aiohttp_client: Any) -> None:
    await app.ingest("demo", cap.parse(FEED))
    client = await aiohttp_client(make_app(app))
    resp = await _press(client, app.token(3), "1")
    assert resp.status == 200 and "已确认收到" in await resp.text()
    statuses = {r.id: r.status for r in await app.store.requests_of(1)}
    assert statuses[3] == "confirmed" and list(statuses.values()).count("confirmed") == 1


async def test_another_digit_asks_again_and_confirms_nothing(app: App, aiohttp_client: Any) -> None:
    await app.ingest("demo", cap.parse(FEED))
    client = await aiohttp_client(make_app(app))
    resp = await _press(client, app.token(3), "7")
    assert "请按1" in await resp.text()
    assert (await app.store.request(3)).status == "pending"  # type: ignore[union-attr]


async def test_a_forged_keypress_is_refused_and_a_forged_token_confirms_nothing(
    app: App, aiohttp_client: Any
) -> None:
    await app.ingest("demo", cap.parse(FEED))
    client = await aiohttp_client(make_app(app))
    assert (await _press(client, app.token(3), "1", signed=False)).status == 403
    resp = await _press(client, "3.AAAAAAAAAAAA", "1")
    assert "链接无效" in await resp.text()
    assert "confirmed" not in {r.status for r in await app.store.requests_of(1)}
