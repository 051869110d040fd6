"""Telegram: the "确认收到" button, its webhook, and how Bot API errors are classified.

Everything goes over HTTP on 127.0.0.1: the channel to the local fake Bot API,
and the fake's button presses to the app's webhook, as Telegram would post them.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import DEMO
from warnbot import links
from warnbot.app import App
from warnbot.channels import CHANNELS
from warnbot.channels.telegram import (
    BUTTON_TEXT,
    CALLBACK_DATA_MAX_BYTES,
    TelegramBot,
    TelegramSettings,
)
from warnbot.errors import ConfigError, SendError
from warnbot.fakes.telegram import FakeTelegram, SentMessage
from warnbot.ingest import cap
from warnbot.model import Message, Request
from warnbot.settings import load_settings
from warnbot.store.tables import acks
from warnbot.web import make_app
from warnbot.web.telegram_hooks import CLOSED, CONFIRMED, INVALID

BOT_TOKEN = "123456789:AAtest-token-not-a-secret"
SECRET = "test-webhook-secret"
CHAT = "100001"
BODY = "【暴雨橙色预警】示例县气象台发布暴雨橙色预警信号，请确认收到。"
FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()


def settings_for(fake: FakeTelegram, secret: str | None = SECRET, **kw: Any) -> TelegramSettings:
    return TelegramSettings(
        bot_token=kw.pop("bot_token", BOT_TOKEN),
        api_base_url=fake.base_url,
        webhook_secret=secret,
        **kw,
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[TelegramBot]:
    bot = TelegramBot(settings_for(fake))
    yield bot
    await bot.aclose()


@pytest.fixture
async def hook(app: App, fake: FakeTelegram, aiohttp_client: Any) -> str:
    """The app's webhook URL, with a Telegram channel and one open incident."""
    app.channels["telegram"] = TelegramBot(settings_for(fake))
    await app.ingest("demo", cap.parse(FEED))
    client = await aiohttp_client(make_app(app))
    return str(client.make_url("/hooks/telegram"))


def message(token: str | None, key: str = "request:1:telegram") -> Message:
    return Message(key, "telegram", CHAT, BODY, ack_token=token)


async def requests(app: App) -> list[Request]:
    ((incident, _),) = await app.store.open_incidents()
    return await app.store.requests_of(incident.id)


async def ask(app: App, fake: FakeTelegram, token: str) -> SentMessage:
    """Send a message with ``token``'s button through the app's channel; the fake's copy."""
    await app.channels["telegram"].send(message(token))
    return fake.messages[-1]


async def recorded_acks(app: App) -> list[dict[str, Any]]:
    async with app.store.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(sa.select(acks))).mappings()]


# sending -------------------------------------------------------------------------


async def test_a_message_with_an_ack_token_carries_the_confirm_button(
    bot: TelegramBot, fake: FakeTelegram
) -> None:
    receipt = await bot.send(message("1.abcdefghijkl"))
    (sent,) = fake.messages
    assert sent.text == BODY and sent.chat_id == int(CHAT)
    assert sent.buttons() == [{"text": BUTTON_TEXT, "callback_data": "ack:1.abcdefghijkl"}]
    assert receipt.provider_id == f"{CHAT}:{sent.message_id}"


async def test_a_message_without_an_ack_token_has_no_button(
    bot: TelegramBot, fake: FakeTelegram
) -> None:
    await bot.send(message(None))
    assert fake.messages[0].reply_markup is None


async def test_the_longest_possible_token_fits_the_64_byte_callback_data(
    bot: TelegramBot, fake: FakeTelegram
) -> None:
    token = links.sign(2**64 - 1, links.new_secret())
    assert len(f"ack:{token}".encode()) <= CALLBACK_DATA_MAX_BYTES
    await bot.send(message(token))
    assert fake.messages[0].buttons()[0]["callback_data"] == f"ack:{token}"


async def test_a_token_too_long_for_a_button_still_sends_the_warning_without_one(
    bot: TelegramBot, fake: FakeTelegram
) -> None:
    await bot.send(message("x" * 61))  # "ack:" + 61 = 65 bytes
    assert fake.messages[0].text == BODY and fake.messages[0].reply_markup is None


async def test_flood_control_429_is_transient_and_says_how_long_to_wait(
    bot: TelegramBot, fake: FakeTelegram
) -> None:
    fake.fail_next(429, "Too Many Requests: retry after 7", retry_after=7)
    with pytest.raises(SendError) as e:
        await bot.send(message("1.abcdefghijkl"))
    assert e.value.retryable and e.value.code == "429" and "retry after 7 s" in e.value.reason
    assert not fake.messages


async def test_a_server_error_is_transient(bot: TelegramBot, fake: FakeTelegram) -> None:
    fake.fail_next(502, "Bad Gateway")
    with pytest.raises(SendError) as e:
        await bot.send(message(None))
    assert e.value.retryable and e.value.code == "502"


@pytest.mark.parametrize(
    ("status", "description"),
    [(403, "Forbidden: bot was blocked by the user"), (400, "Bad Request: chat not found")],
)
async def test_a_blocked_bot_or_an_unknown_chat_is_permanent(
    bot: TelegramBot, fake: FakeTelegram, status: int, description: str
) -> None:
    fake.fail_next(status, description)
    with pytest.raises(SendError) as e:
        await bot.send(message(None))
    assert not e.value.retryable and e.value.code == str(status) and description in e.value.reason


async def test_a_wrong_bot_token_is_permanent_and_never_shown(fake: FakeTelegram) -> None:
    bot = TelegramBot(settings_for(fake, bot_token="42:wrong-token"))
    try:
        with pytest.raises(SendError) as e:
            await bot.send(message(None))
    finally:
        await bot.aclose()
    assert not e.value.retryable and e.value.code == "401" and "wrong-token" not in e.value.reason


async def test_an_unreachable_api_is_transient_and_the_token_is_not_shown() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = TelegramSettings(bot_token=BOT_TOKEN, api_base_url=f"http://127.0.0.1:{port}")
    bot = TelegramBot(settings)
    try:
        with pytest.raises(SendError) as e:
            await bot.send(message(None))
    finally:
        await bot.aclose()
    assert e.value.retryable and BOT_TOKEN not in str(e.value) and e.value.__cause__ is None


# the button and its webhook ----------------------------------------------------------


async def test_pressing_the_button_confirms_exactly_that_persons_request_once(
    app: App, fake: FakeTelegram, hook: str
) -> None:
    target = (await requests(app))[1]
    sent = await ask(app, fake, app.token(target.id))
    assert [await fake.press(hook, SECRET, sent) for _ in range(2)] == [200, 200]
    statuses = {r.id: r.status for r in await requests(app)}
    assert statuses.pop(target.id) == "confirmed"
    assert set(statuses.values()) == {"pending"}
    (ack,) = await recorded_acks(app)
    assert ack["request_id"] == target.id and ack["path"] == "chat"
    assert [a.text for a in fake.answers] == [CONFIRMED, CONFIRMED]


async def test_a_press_after_the_lift_says_the_response_ended_and_records_nothing(
    app: App, fake: FakeTelegram, hook: str
) -> None:
    target = (await requests(app))[0]
    sent = await ask(app, fake, app.token(target.id))
    await app.store.lift(target.incident_id, app.clock())
    assert await fake.press(hook, SECRET, sent) == 200
    assert [a.text for a in fake.answers] == [CLOSED]
    assert not await recorded_acks(app)


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET + "x"])
async def test_a_press_without_the_right_secret_is_refused_and_records_nothing(
    app: App, fake: FakeTelegram, hook: str, secret: str | None
) -> None:
    sent = await ask(app, fake, app.token((await requests(app))[0].id))
    assert await fake.press(hook, secret, sent) == 403
    assert not await recorded_acks(app) and not fake.answers
    assert {r.status for r in await requests(app)} == {"pending"}


async def test_without_a_configured_secret_every_update_is_refused(
    app: App, fake: FakeTelegram, hook: str
) -> None:
    sent = await ask(app, fake, app.token((await requests(app))[0].id))
    app.channels["telegram"] = TelegramBot(settings_for(fake, secret=None))
    for secret in (None, "", SECRET):
        assert await fake.press(hook, secret, sent) == 403
    assert not await recorded_acks(app)


async def test_without_a_telegram_channel_every_update_is_refused(
    app: App, fake: FakeTelegram, hook: str
) -> None:
    sent = await ask(app, fake, app.token((await requests(app))[0].id))
    await app.channels.pop("telegram").aclose()
    assert await fake.press(hook, SECRET, sent) == 403
    assert not await recorded_acks(app)


@pytest.mark.parametrize("forge", ["other key", "no such request", "malformed"])
async def test_a_forged_token_is_answered_invalid_and_records_nothing(
    app: App, fake: FakeTelegram, hook: str, forge: str
) -> None:
    token = {
        "other key": links.sign(1, "some-other-secret"),
        "no such request": app.token(99_999),
        "malformed": "zz.!!",
    }[forge]
    sent = await ask(app, fake, token)
    assert await fake.press(hook, SECRET, sent) == 200
    assert [a.text for a in fake.answers] == [INVALID]
    assert not await recorded_acks(app)


async def test_other_updates_are_accepted_and_ignored(
    app: App, fake: FakeTelegram, hook: str
) -> None:
    text = {"message": {"message_id": 1, "date": 0, "chat": {"id": 1}, "text": "收到"}}
    other = {"callback_query": {"id": "7", "from": {"id": 1}, "data": "menu:2"}}
    for update in (text, other, {}):
        assert await fake.post_update(hook, SECRET, update) == 200
    assert not await recorded_acks(app) and not fake.answers


async def test_a_body_that_is_not_json_is_a_bad_request(
    app: App, hook: str, aiohttp_client: Any
) -> None:
    client = await aiohttp_client(make_app(app))
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    resp = await client.post("/hooks/telegram", data=b"{not json", headers=headers)
    assert resp.status == 400 and not await recorded_acks(app)


async def test_the_ack_is_kept_when_answering_the_press_fails(
    app: App, fake: FakeTelegram, hook: str
) -> None:
    target = (await requests(app))[0]
    sent = await ask(app, fake, app.token(target.id))
    fake.fail_next(502, "Bad Gateway")
    assert await fake.press(hook, SECRET, sent) == 200
    assert [a["request_id"] for a in await recorded_acks(app)] == [target.id]


# settings -----------------------------------------------------------------------------


def _toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "warnbot.toml"
    path.write_text(body, encoding="utf-8")
    return path


async def test_the_registry_builds_the_bot_from_the_toml_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeTelegram
) -> None:
    monkeypatch.setenv("WARNBOT_CHANNELS__TELEGRAM__BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("WARNBOT_CHANNELS__TELEGRAM__WEBHOOK_SECRET", SECRET)
    path = _toml(tmp_path, f'[channels.telegram]\napi_base_url = "{fake.base_url}/"\n')
    bot = CHANNELS["telegram"](load_settings(path))
    try:
        await bot.send(message(None))
    finally:
        await bot.aclose()
    assert isinstance(bot, TelegramBot) and bot.accepts(SECRET) and len(fake.messages) == 1


@pytest.mark.parametrize("key", ["bot_token", "webhook_secret"])
def test_a_secret_written_in_the_toml_file_is_refused(tmp_path: Path, key: str) -> None:
    path = _toml(tmp_path, f'[channels.telegram]\n{key} = "abc"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    assert f"channels.telegram.{key}: secrets are not read" in str(e.value)


def test_a_webhook_secret_telegram_would_refuse_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WARNBOT_CONFIG", raising=False)
    monkeypatch.setenv("WARNBOT_CHANNELS__TELEGRAM__BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("WARNBOT_CHANNELS__TELEGRAM__WEBHOOK_SECRET", "has spaces!")
    with pytest.raises(ConfigError, match=r"channels\.telegram\.webhook_secret"):
        CHANNELS["telegram"](load_settings())


def test_a_missing_bot_token_is_a_config_error_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WARNBOT_CONFIG", raising=False)
    monkeypatch.delenv("WARNBOT_CHANNELS__TELEGRAM__BOT_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="WARNBOT_CHANNELS__TELEGRAM__BOT_TOKEN"):
        CHANNELS["telegram"](load_settings())
