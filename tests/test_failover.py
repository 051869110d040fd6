"""Failover across a person's addresses and channels: SMS to each phone, then a call,
then their chat ids; only with every address spent is the person unreachable."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import defusedxml.ElementTree as ET
import pytest

from tests.conftest import DEMO, Clock
from tests.test_channels_email import Mailbox, mailbox  # noqa: F401 (the SMTP fixture)
from tests.test_channels_email import settings as email_settings
from tests.test_channels_telegram import BOT_TOKEN, settings_for
from warnbot import failover
from warnbot.app import App
from warnbot.channels.email import SmtpEmail
from warnbot.channels.telegram import TelegramBot
from warnbot.errors import SendError
from warnbot.fakes.telegram import FakeTelegram
from warnbot.fakes.twilio import FakeTwilio
from warnbot.ingest import cap
from warnbot.model import Responder, Tier
from warnbot.settings import GroupRoute

FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()
PERSON = Responder(
    "V7",
    "测试七",
    Tier.VILLAGE,
    "449901001001",
    ("+8617000000701", "+8617000000702"),
    chat_ids=(("email", "duty.v7@example.org"), ("telegram", "700001"), ("wecom", "zhangqi")),
)
ALL = ("twilio", "voice", "telegram", "wecom", "email")
DEFAULT = ["sms", "voice", "telegram", "wecom", "dingtalk", "feishu", "slack", "email"]


def test_the_default_order_is_every_phone_by_sms_then_by_call_then_chat() -> None:
    route = GroupRoute(channel="wecom", group="village_duty", tiers=[Tier.VILLAGE])
    found = failover.addresses(PERSON, DEFAULT, "twilio", ALL, [route])
    assert [(a.channel, a.to, a.family) for a in found] == [
        ("twilio", "+8617000000701", "sms"),
        ("twilio", "+8617000000702", "sms"),
        ("voice", "+8617000000701", "voice"),
        ("voice", "+8617000000702", "voice"),
        ("telegram", "700001", "chat"),
        ("wecom", "village_duty", "chat"),
        ("email", "duty.v7@example.org", "chat"),
    ]
    assert found[-2].mentions == ("zhangqi",)


def test_the_order_is_configurable_and_unconfigured_channels_are_passed_over() -> None:
    found = failover.addresses(PERSON, ["telegram", "voice", "sms"], "twilio", ("twilio", "voice"))
    assert [a.channel for a in found] == ["voice", "voice", "twilio", "twilio"]


def test_a_report_is_never_failed_over_to_a_call_nor_to_a_group_without_a_route() -> None:
    found = failover.addresses(PERSON, DEFAULT, "twilio", ALL, asks=False)
    assert [a.channel for a in found] == ["twilio", "twilio", "telegram", "email"]


def test_the_next_address_skips_those_tried_for_the_message_and_those_blocked() -> None:
    found = failover.addresses(PERSON, DEFAULT, "twilio", ALL)
    tried = {("twilio", "+8617000000701")}
    blocked = {("twilio", "+8617000000702")}
    spare = failover.next_address(found, tried, blocked)
    assert spare is not None and (spare.channel, spare.to) == ("voice", "+8617000000701")
    assert failover.alt_key("request:3:twilio|alt:x", spare) == (
        "request:3:twilio|alt:voice:+8617000000701"
    )


@pytest.fixture
async def asked(app: App) -> AsyncIterator[App]:
    """The demo incident is open and its first person asked, with a spare phone and
    PERSON's chat ids."""
    await app.ingest("demo", cap.parse(FEED))
    ((incident, _),) = await app.store.open_incidents()
    first = (await app.store.requests_of(incident.id))[0].responder_key
    phones = (app.people[first].phones[0], "+8617000000709")  # the asked one, and a spare
    app.people[first] = dataclasses.replace(PERSON, key=first, phones=phones)
    yield app


def _person(app: App) -> Responder:
    return next(p for p in app.people.values() if p.chat_ids == PERSON.chat_ids)


async def test_a_number_refusing_sms_is_called_with_the_voice_ask(
    asked: App, fake_twilio: FakeTwilio
) -> None:
    """30006-like: SMS to the number fails for good; the same phone still takes a call,
    whose TwiML is the voice template's ask with the keypad gather."""
    person = _person(asked)
    for phone in person.phones:
        fake_twilio.fail_for(phone, 21614, 400, only="messages")
    for _ in range(4):
        await asked.pump()
    (call,) = [c for c in fake_twilio.calls if c.to == person.phones[0]]
    root = ET.fromstring(call.twiml)
    gather = root.find("Gather")
    assert gather is not None and "/hooks/twilio/voice/" in (gather.get("action") or "")
    assert person.name in (gather.findall("Say")[0].text or "")
    assert await asked.store.blocked_addresses(person.key) == {("twilio", p) for p in person.phones}


async def test_with_sms_and_calls_spent_the_ask_goes_to_telegram_with_its_button(
    asked: App, fake_twilio: FakeTwilio
) -> None:
    person = _person(asked)
    asked.settings = asked.settings.model_copy(update={"failover_order": ["sms", "telegram"]})
    for phone in person.phones:
        fake_twilio.fail_for(phone, 21610, 400)
    async with FakeTelegram(BOT_TOKEN) as telegram:
        asked.channels["telegram"] = TelegramBot(settings_for(telegram))
        for _ in range(4):
            await asked.pump()
        (sent,) = telegram.messages
    assert sent.chat_id == 700001 and "确认收到" in sent.text and "/a/" in sent.text
    assert person.name in sent.text and sent.buttons
    assert "unreachable" not in {r.status for r in await asked.store.requests_of(1)}


async def test_with_every_phone_refused_the_ask_is_mailed_with_its_link(
    asked: App,
    fake_twilio: FakeTwilio,
    mailbox: tuple[Mailbox, int],  # noqa: F811
) -> None:
    box, port = mailbox
    person = _person(asked)
    asked.settings = asked.settings.model_copy(update={"failover_order": ["sms", "email"]})
    for phone in person.phones:
        fake_twilio.fail_for(phone, 21610, 400)
    asked.channels["email"] = SmtpEmail(email_settings(port))
    for _ in range(4):
        await asked.pump()
    (envelope,) = box.received
    mail = box.mail()
    assert envelope.rcpt_tos == ["duty.v7@example.org"]
    assert person.name in mail.get_content() and "/a/" in mail.get_content()
    assert "unreachable" not in {r.status for r in await asked.store.requests_of(1)}


async def test_when_every_address_failed_the_person_is_unreachable(
    asked: App, fake_twilio: FakeTwilio
) -> None:
    person = _person(asked)
    asked.settings = asked.settings.model_copy(update={"failover_order": ["sms", "voice"]})
    for phone in person.phones:
        fake_twilio.fail_for(phone, 21211, 400)
    for _ in range(6):
        await asked.pump()
    statuses = {r.responder_key: r.status for r in await asked.store.requests_of(1)}
    assert statuses[person.key] == "unreachable"
    blocked = await asked.store.blocked_addresses(person.key)
    assert blocked == {(c, p) for c in ("twilio", "voice") for p in person.phones}


async def test_retries_running_out_fail_over_without_blocking_the_number(
    asked: App, fake_twilio: FakeTwilio, clock: Clock
) -> None:
    person = _person(asked)
    fake_twilio.fail_for(person.phones[0], 20500, 500, only="messages")  # transient, always
    worker = asked.dispatcher()
    worker.max_attempts = 2
    for _ in range(3):
        await worker.pump()
        clock.advance(600)
    assert person.phones[1] in [m.to for m in fake_twilio.messages]
    assert await asked.store.failed_addresses(person.key) == set()
    assert await asked.store.blocked_addresses(person.key) == set()
    counts = await asked.store.outbox_counts()
    assert counts["failed"] == 1


async def test_deciding_the_same_failover_twice_enqueues_it_once(asked: App) -> None:
    """A failed send and a later undelivered report of it both fail over: one message."""
    (row, *_) = await asked.store.claim(100, asked.clock(), 60)
    person = asked.people[row.responder_key or ""]
    refused = SendError("Twilio 400 code 21211", retryable=False, code="21211")
    before = sum((await asked.store.outbox_counts()).values())
    await asked._failover(row, refused)
    await asked._failover(row, refused)
    assert sum((await asked.store.outbox_counts()).values()) == before + 1
    assert len(await asked.store.tried_addresses(row.key, row.id + 1000)) == 2
    assert person.key == row.responder_key
