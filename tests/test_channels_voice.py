"""Warning calls: TwiML read in Mandarin, 1 pressed confirms through the signed webhook."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import defusedxml.ElementTree as ET

from tests.conftest import DEMO, PUBLIC_URL, Clock, sign
from warnbot import dispatch
from warnbot.app import App, utcnow
from warnbot.channels.twilio_voice import TwilioVoice
from warnbot.fakes.twilio import FakeTwilio
from warnbot.ingest import cap
from warnbot.model import Message
from warnbot.store import Store
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


async def test_pressing_1_after_the_lift_says_the_response_ended_and_confirms_nothing(
    app: App, aiohttp_client: Any
) -> None:
    await app.ingest("demo", cap.parse(FEED))
    await app.store.lift(1, app.clock())
    client = await aiohttp_client(make_app(app))
    resp = await _press(client, app.token(3), "1")
    assert "本次响应已结束" in await resp.text()
    assert (await app.store.request(3)).status == "pending"  # type: ignore[union-attr]


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


def _call(key: str, to: str = "+8617000000401") -> Message:
    return Message(key, "voice", to, "红色预警：示例县暴雨。", 1, "V01", ack_token="1.abcdef")


async def _crashed(store: Store, message: Message, queued_ago_s: float) -> Clock:
    """Queue and claim ``message`` as a worker that then died; a clock past its lease."""
    queued = utcnow() - timedelta(seconds=queued_ago_s)
    await store.enqueue([message], queued)
    await store.claim(1, queued, lease_s=60)
    return Clock(queued + timedelta(seconds=61))


async def test_a_call_placed_just_before_a_crash_is_reconciled_not_placed_again(
    app: App, store: Store, fake_twilio: FakeTwilio
) -> None:
    voice = _voice(app)
    clock = await _crashed(store, _call("voice:1"), queued_ago_s=5)
    await voice.send(_call("voice:1"))  # placed; the worker died before recording it
    await dispatch.Dispatcher(store, {"voice": voice}, clock).pump()
    await voice.aclose()
    (call,) = fake_twilio.calls
    assert await store.outbox_counts() == {"sent": 1}
    assert (await store.row_by_provider_id(call.sid)) is not None
    assert fake_twilio.rejected == []


async def test_a_call_to_the_same_number_before_the_row_was_queued_is_not_taken_for_it(
    app: App, store: Store, fake_twilio: FakeTwilio
) -> None:
    """An earlier rung's call (minutes before) is not this row's: this one is placed."""
    voice = _voice(app)
    await voice.send(_call("voice:1"))
    clock = await _crashed(store, _call("voice:2"), queued_ago_s=-300)  # queued 5 min later
    await dispatch.Dispatcher(store, {"voice": voice}, clock).pump()
    await voice.aclose()
    assert len(fake_twilio.calls) == 2 and await store.outbox_counts() == {"sent": 1}
