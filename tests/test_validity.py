"""Validity periods per message: asks and escalations of an urgent level are short-lived,
tips and notices keep the default; the request to the fake Twilio carries it."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import DEMO
from warnbot.app import App
from warnbot.fakes.twilio import FakeTwilio
from warnbot.ingest import cap
from warnbot.model import Level, Message
from warnbot.settings import TwilioSettings
from warnbot.store import OutboxRow
from warnbot.validity import validity_s

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()  # opens a Level Ⅱ incident
TIP = "+8617000000888"


def _row(key: str, priority: int = 0, incident_id: int | None = 1) -> OutboxRow:
    now = datetime(2026, 8, 15, tzinfo=UTC)
    return OutboxRow(
        1, key, "twilio", "+86170", "x", incident_id, "P", 1, None, None, now, False, priority
    )


def test_asks_and_escalations_of_level_i_and_ii_get_the_short_validity() -> None:
    twilio = TwilioSettings()
    for key in ("request:1:twilio", "repeat:1:2:twilio", "silent:ab:P:twilio", "duty:ab:P:twilio"):
        assert validity_s(_row(key), Level.II, twilio) == 600, key
    assert validity_s(_row("request:1:twilio|alt:twilio:+86171"), Level.I, twilio) == 600


def test_tips_notices_and_lower_levels_keep_the_default() -> None:
    twilio = TwilioSettings()
    assert validity_s(_row("tip:1:+86170", priority=1), Level.I, twilio) == 1800
    assert validity_s(_row("lifted:1:2:P:twilio"), Level.I, twilio) == 1800
    assert validity_s(_row("request:1:twilio"), Level.III, twilio) == 1800
    assert validity_s(_row("feed-silent:f:1:P:twilio", incident_id=None), None, twilio) == 1800


async def _validity_sent(app: App, fake_twilio: FakeTwilio) -> dict[str, str | None]:
    await app.ingest("demo", cap.parse(FEED))
    tip = Message("tip:1:x", "twilio", TIP, "【提示】暴雨橙色预警", 1, priority=1)
    await app.store.enqueue([tip], app.clock())
    await app.pump()
    assert fake_twilio.rejected == []
    return {m.to: m.params.get("ValidityPeriod") for m in fake_twilio.messages}


async def test_the_fake_twilio_gets_the_short_validity_for_asks_and_the_default_for_a_tip(
    app: App, fake_twilio: FakeTwilio
) -> None:
    sent = await _validity_sent(app, fake_twilio)
    assert sent.pop(TIP) == "1800"
    assert sent and set(sent.values()) == {"600"}


async def test_with_only_level_i_urgent_a_level_ii_ask_keeps_the_default(
    app: App, fake_twilio: FakeTwilio
) -> None:
    twilio = app.settings.twilio.model_copy(update={"urgent_levels": ["Ⅰ"]})
    app.settings = app.settings.model_copy(update={"twilio": twilio})
    assert set((await _validity_sent(app, fake_twilio)).values()) == {"1800"}
