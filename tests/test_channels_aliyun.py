"""Aliyun SMS: the official SDK against the fake Dysmsapi (which checks the V3 signature),
error classification, and the SmsUp push that confirms answers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from alibabacloud_tea_openapi.utils import Utils
from pydantic import SecretStr

from tests.conftest import DEMO
from warnbot import dispatch
from warnbot.app import App, utcnow
from warnbot.channels import CHANNELS
from warnbot.channels.aliyun_sms import (
    AliyunInbound,
    AliyunSms,
    AliyunSmsSettings,
    mainland_number,
)
from warnbot.errors import ConfigError, SendError
from warnbot.fakes.aliyun import FakeAliyunSms
from warnbot.ingest import cap
from warnbot.model import Message
from warnbot.settings import Settings, load_settings
from warnbot.store import OutboxRow, Store
from warnbot.web import make_app

KEY_ID = "LTAI5tTestAccessKeyId0000"
KEY_SECRET = "test-access-key-secret-not-a-secret"
SIGN = "某某县应急管理局"
TEMPLATE = "SMS_471234567"
PATH_SECRET = "smsup-path-secret-0123456789abcdef0123456789"
FEED = (DEMO / "feed" / "rainstorm_orange.xml").read_bytes()
BODY = "【Ⅱ级响应】暴雨橙色预警 a+b=c&d~e/f 100%：请立即组织转移，回复1确认"


def _settings(endpoint: str, **changes: Any) -> AliyunSmsSettings:
    base = {
        "access_key_id": KEY_ID,
        "access_key_secret": KEY_SECRET,
        "endpoint": endpoint,
        "protocol": "http",
        "sign_name": SIGN,
        "template_code": TEMPLATE,
        "timeout_s": 5,
    }
    return AliyunSmsSettings.model_validate(base | changes)


def _message(to: str = "+8617000000401", body: str = BODY) -> Message:
    return Message("msg-1", "aliyun", to, body, 1, "V01")


@pytest.fixture
async def fake() -> AsyncIterator[FakeAliyunSms]:
    templates = {TEMPLATE: "${content}", "SMS_000000002": "${org}提醒：${content}"}
    async with FakeAliyunSms(KEY_ID, KEY_SECRET, sign_names=(SIGN,), templates=templates) as f:
        yield f


@pytest.fixture
def channel(fake: FakeAliyunSms) -> AliyunSms:
    return AliyunSms(_settings(fake.endpoint))


async def test_the_real_sdk_sends_a_chinese_message_through_the_fake(
    fake: FakeAliyunSms, channel: AliyunSms
) -> None:
    """The fake accepted it only after verifying the ACS3-HMAC-SHA256 signature."""
    receipt = await channel.send(_message())
    assert not fake.rejected
    [sms] = fake.messages
    assert receipt.provider_id == sms.biz_id and receipt.status == "accepted"
    assert sms.phone_numbers == ["17000000401"]
    assert (sms.sign_name, sms.template_code, sms.out_id) == (SIGN, TEMPLATE, "msg-1")
    assert sms.template_param == {"content": BODY}
    assert sms.text == f"【{SIGN}】{BODY}"


async def test_the_office_template_gets_its_own_variables(fake: FakeAliyunSms) -> None:
    settings = _settings(
        fake.endpoint,
        template_code="SMS_000000002",
        template_variable="content",
        template_fixed={"org": "县三防办"},
    )
    await AliyunSms(settings).send(_message(body="水位超警"))
    assert fake.messages[0].text == f"【{SIGN}】县三防办提醒：水位超警"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"access_key_secret": "wrong-secret"}, "SignatureDoesNotMatch"),
        ({"access_key_id": "LTAI5tSomebodyElse000000"}, "InvalidAccessKeyId.NotFound"),
    ],
    ids=["wrong-secret", "unknown-key"],
)
async def test_wrong_credentials_are_refused_by_the_fake_and_permanent(
    fake: FakeAliyunSms, changes: dict[str, str], code: str
) -> None:
    """So a signing bug cannot pass: the fake computes the signature itself."""
    with pytest.raises(SendError) as raised:
        await AliyunSms(_settings(fake.endpoint, **changes)).send(_message())
    assert raised.value.code == code and not raised.value.retryable
    assert [r.code for r in fake.rejected] == [code] and not fake.messages


async def test_a_replayed_request_is_refused_by_the_fake(
    fake: FakeAliyunSms, channel: AliyunSms, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same nonce twice is a replay, however well signed."""
    monkeypatch.setattr(Utils, "get_nonce", staticmethod(lambda: "one-nonce"))
    await channel.send(_message())
    with pytest.raises(SendError) as raised:
        await channel.send(_message())
    assert raised.value.code == "SignatureNonceUsed" and len(fake.messages) == 1


@pytest.mark.parametrize(
    "phone",
    ["+8613800000000", "8613800000000", "008613800000000", "13800000000", "+86 138-0000-0000"],
)
def test_the_86_prefix_is_stripped_to_the_11_digit_number(phone: str) -> None:
    assert mainland_number(phone) == "13800000000"


@pytest.mark.parametrize(
    "phone", ["+85291234567", "+14155550100", "+861012345678", "+8612000000000", ""]
)
async def test_a_non_mainland_number_is_permanent_without_a_call(
    fake: FakeAliyunSms, channel: AliyunSms, phone: str
) -> None:
    with pytest.raises(SendError) as raised:
        await channel.send(_message(to=phone))
    assert not raised.value.retryable and raised.value.code == "not_mainland"
    assert fake.requests == 0


@pytest.mark.parametrize(
    "code",
    ["isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "Throttling.User", "ServiceUnavailable"],
)
async def test_rate_limits_and_system_errors_are_transient(
    fake: FakeAliyunSms, channel: AliyunSms, code: str
) -> None:
    fake.fail_next(code)
    with pytest.raises(SendError) as raised:
        await channel.send(_message())
    assert raised.value.retryable and raised.value.code == code
    assert (await channel.send(_message())).provider_id == fake.messages[0].biz_id


@pytest.mark.parametrize(
    "code",
    [
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isp.RAM_PERMISSION_DENY",
    ],
)
async def test_an_illegal_number_template_signature_or_empty_account_is_permanent(
    fake: FakeAliyunSms, channel: AliyunSms, code: str
) -> None:
    fake.fail_next(code)
    with pytest.raises(SendError) as raised:
        await channel.send(_message())
    assert not raised.value.retryable and raised.value.code == code


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"sign_name": "未报备签名"}, "isv.SMS_SIGNATURE_ILLEGAL"),
        ({"template_code": "SMS_999"}, "isv.SMS_TEMPLATE_ILLEGAL"),
        ({"template_variable": "text"}, "isv.TEMPLATE_MISSING_PARAMETERS"),
    ],
)
async def test_the_fake_checks_signature_name_template_and_variables(
    fake: FakeAliyunSms, changes: dict[str, str], code: str
) -> None:
    with pytest.raises(SendError) as raised:
        await AliyunSms(_settings(fake.endpoint, **changes)).send(_message())
    assert raised.value.code == code and not raised.value.retryable and not fake.messages


@pytest.mark.parametrize(
    ("body", "limit", "code"),
    [
        ("请点 https://warnbot.example.org/a/1.x 确认", None, "isv.PARAM_NOT_SUPPORT_URL"),
        ("暴" * 36, 35, "isv.PARAM_LENGTH_LIMIT"),
    ],
    ids=["link", "too-long"],
)
async def test_a_link_or_an_overlong_variable_is_refused_permanently_as_aliyun_does(
    body: str, limit: int | None, code: str
) -> None:
    """Aliyun takes links only as approved template text, and caps each variable's length."""
    async with FakeAliyunSms(
        KEY_ID,
        KEY_SECRET,
        sign_names=(SIGN,),
        templates={TEMPLATE: "${content}"},
        max_variable_chars=limit,
    ) as fake:
        with pytest.raises(SendError) as raised:
            await AliyunSms(_settings(fake.endpoint)).send(_message(body=body))
    assert raised.value.code == code and not raised.value.retryable


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_an_unreachable_endpoint_is_transient(closed_port: int) -> None:
    channel = AliyunSms(_settings(f"127.0.0.1:{closed_port}"))
    with pytest.raises(SendError) as raised:
        await channel.send(_message())
    assert raised.value.retryable
    assert not raised.value.in_doubt  # never connected: nothing can have been taken


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


async def test_a_provider_that_never_answers_is_transient_after_the_timeout(
    silent_port: int,
) -> None:
    channel = AliyunSms(_settings(f"127.0.0.1:{silent_port}", timeout_s=0.3))
    with pytest.raises(SendError) as raised:
        await asyncio.wait_for(channel.send(_message()), 5)
    assert raised.value.retryable
    assert raised.value.in_doubt  # connected: the request may have been taken


async def test_a_timeout_after_aliyun_took_the_message_is_reconciled_not_sent_again(
    store: Store, fake: FakeAliyunSms
) -> None:
    """The fake takes the message and answers after the channel's timeout: the row is in
    doubt, and the retry finds it by its OutId instead of sending it twice."""
    channel = AliyunSms(_settings(fake.endpoint, timeout_s=0.3))
    fake.answer_delay_s = 1.0
    await store.enqueue([_message()], utcnow())
    worker = dispatch.Dispatcher(store, {"aliyun": channel}, utcnow, settle_s=0.0)
    worker.backoff_scale = 0.0
    await worker.pump()
    assert await store.outbox_counts() == {"queued": 1}
    await worker.pump()
    assert await store.outbox_counts() == {"sent": 1}
    assert [m.out_id for m in fake.messages] == ["msg-1"]  # taken once, never resent


def test_plain_http_is_refused_towards_a_real_host() -> None:
    with pytest.raises(ValueError, match="loopback"):
        _settings("dysmsapi.aliyuncs.com")
    with pytest.raises(ValueError, match="pattern"):  # a scheme here would beat ``protocol``
        _settings("http://dysmsapi.aliyuncs.com", protocol="https")
    assert _settings("localhost:8000").protocol == "http"
    assert _settings("[::1]:8000").protocol == "http"


def test_the_registry_builds_the_channel_from_channels_aliyun() -> None:
    raw = _settings("127.0.0.1:1").model_dump(mode="json") | {"access_key_secret": KEY_SECRET}
    channel = CHANNELS["aliyun"](Settings(channels={"aliyun": raw}))
    assert isinstance(channel, AliyunSms) and channel.name == "aliyun"
    with pytest.raises(ConfigError, match=r"channels\.aliyun\.sign_name"):
        CHANNELS["aliyun"](Settings(channels={"aliyun": raw | {"sign_name": ""}}))


def test_secrets_in_the_toml_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "warnbot.toml"
    config.write_text(
        '[channels.aliyun]\naccess_key_id = "LTAI5t"\naccess_key_secret = "x"\n'
        'inbound_secret = "y"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert [p.split(": ")[1] for p in raised.value.problems] == [
        "channels.aliyun.access_key_secret",
        "channels.aliyun.inbound_secret",
    ]


def test_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "warnbot.toml"
    config.write_text(
        f'[channels.aliyun]\naccess_key_id = "{KEY_ID}"\nsign_name = "{SIGN}"\n'
        f'template_code = "{TEMPLATE}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("WARNBOT_CHANNELS__ALIYUN__ACCESS_KEY_SECRET", KEY_SECRET)
    monkeypatch.setenv("WARNBOT_CHANNELS__ALIYUN__INBOUND_SECRET", PATH_SECRET)
    settings = AliyunSmsSettings.of(load_settings(config))
    assert settings.access_key_secret == SecretStr(KEY_SECRET)
    assert settings.inbound_secret == SecretStr(PATH_SECRET)
    assert KEY_SECRET not in repr(settings)


def test_a_short_inbound_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        _settings("127.0.0.1:1", inbound_secret="short")


def test_the_allowlist_matches_ipv4_peers_on_a_dual_stack_socket() -> None:
    inbound = AliyunInbound(inbound_allow=["10.0.0.0/8"])
    assert inbound.allows("10.1.2.3") and inbound.allows("::ffff:10.1.2.3")
    assert not inbound.allows("192.0.2.1") and not inbound.allows(None)
    assert AliyunInbound().allows(None)  # no list: any address


# The SmsUp push (上行消息)


def _inbound(app: App, **aliyun: Any) -> None:
    app.settings = app.settings.model_copy(
        update={"channels": {**app.settings.channels, "aliyun": aliyun}}
    )


@pytest.fixture
async def client(app: App, aiohttp_client: Any) -> TestClient:
    await app.ingest("demo", cap.parse(FEED))
    _inbound(app, inbound_secret=PATH_SECRET)
    return await aiohttp_client(make_app(app))


async def _statuses(app: App) -> dict[str, str]:
    return {r.responder_key: r.status for r in await app.store.requests_of(1)}


def _item(phone: str, content: str = "1") -> dict[str, Any]:
    return {
        "phone_number": phone,
        "content": content,
        "send_time": "2026-08-15 14:20:00",
        "dest_code": "1234",
        "sequence_id": "1234567890",
    }


async def test_a_pushed_reply_confirms_the_senders_open_request(
    app: App, client: TestClient
) -> None:
    url = str(client.make_url(f"/hooks/aliyun/sms/{PATH_SECRET}"))
    answer = await FakeAliyunSms().push_up(url, [("17000000401", "收到")])
    assert answer == {"code": 0, "msg": "接收成功", "status": 200}
    statuses = await _statuses(app)
    assert [k for k, s in statuses.items() if s == "confirmed"] == ["V01"]


@pytest.mark.parametrize(
    ("secret", "configured"),
    [("wrong-" + PATH_SECRET, PATH_SECRET), (PATH_SECRET[:-1], PATH_SECRET), (PATH_SECRET, None)],
    ids=["wrong", "truncated", "none-configured"],
)
async def test_a_wrong_path_secret_gets_404_and_records_nothing(
    app: App, client: TestClient, secret: str, configured: str | None
) -> None:
    _inbound(app, inbound_secret=configured)
    resp = await client.post(f"/hooks/aliyun/sms/{secret}", json=[_item("17000000401")])
    assert resp.status == 404
    assert "confirmed" not in (await _statuses(app)).values()


async def test_an_address_outside_the_allowlist_gets_403(app: App, client: TestClient) -> None:
    """The test client connects from 127.0.0.1; behind a proxy this is the proxy's address."""
    _inbound(app, inbound_secret=PATH_SECRET, inbound_allow=["10.0.0.0/8"])
    resp = await client.post(f"/hooks/aliyun/sms/{PATH_SECRET}", json=[_item("17000000401")])
    assert resp.status == 403
    resp = await client.post("/hooks/aliyun/sms/guess", json=[_item("17000000401")])
    assert resp.status == 404  # without the secret, nothing shows the endpoint exists
    assert "confirmed" not in (await _statuses(app)).values()
    _inbound(app, inbound_secret=PATH_SECRET, inbound_allow=["10.0.0.0/8", "127.0.0.0/8"])
    resp = await client.post(f"/hooks/aliyun/sms/{PATH_SECRET}", json=[_item("17000000401")])
    assert resp.status == 200


async def test_a_batch_with_malformed_items_still_takes_the_others(
    app: App, client: TestClient
) -> None:
    batch = [
        {"phone_number": "17000000402"},  # no content
        "not an object",
        _item("12345", "1"),  # not a mainland mobile number
        _item("17000000402", "1"),
        {"phone_number": 17000000403, "content": "1"},  # a number, not a string
        _item("8617000000404", "好的"),
    ]
    resp = await client.post(f"/hooks/aliyun/sms/{PATH_SECRET}", json=batch)
    assert resp.status == 200 and await resp.json() == {"code": 0, "msg": "接收成功"}
    statuses = await _statuses(app)
    assert sorted(k for k, s in statuses.items() if s == "confirmed") == ["V02", "V04"]


async def test_a_body_that_is_not_a_json_array_gets_400(app: App, client: TestClient) -> None:
    for body in (b"{}", b"not json", b"\xff"):
        resp = await client.post(f"/hooks/aliyun/sms/{PATH_SECRET}", data=body)
        assert resp.status == 400
    assert "confirmed" not in (await _statuses(app)).values()


async def test_a_batch_pushed_again_sums_its_reports_back_once(
    app: App, client: TestClient
) -> None:
    """Aliyun pushes a batch again (1, 5, 10 minutes) when it missed our answer: each
    reply's sequence_id files its report once — 30 people moved, not 60."""
    batch = [_item("17000000401", "1 已转移12户30人") | {"sequence_id": "9000000001"}]
    for _ in range(2):
        resp = await client.post(f"/hooks/aliyun/sms/{PATH_SECRET}", json=batch)
        assert resp.status == 200
    totals = await app.store.report_totals(1)
    own = totals[app.people["V01"].region_code].own
    assert (own.households_moved, own.people_moved, own.reports) == (12, 30, 1)


async def test_a_push_without_sequence_ids_is_told_apart_by_send_time(
    app: App, client: TestClient
) -> None:
    """An older push without sequence_id: the same sender, time and text is one reply;
    the same text sent later is another."""
    item = _item("17000000401", "1 已转移2户5人")
    del item["sequence_id"]
    later = item | {"send_time": "2026-08-15 14:30:00"}
    for batch in ([item], [item], [later]):
        assert (await client.post(f"/hooks/aliyun/sms/{PATH_SECRET}", json=batch)).status == 200
    totals = await app.store.report_totals(1)
    assert totals[app.people["V01"].region_code].own.people_moved == 10


async def _crashed_after_claim(store: Store, messages: list[Message]) -> list[OutboxRow]:
    """Enqueue and claim as a worker that then died: its claim lapsed a minute ago."""
    now = utcnow()
    await store.enqueue(messages, now - timedelta(minutes=5))
    return await store.claim(10, now - timedelta(minutes=2), lease_s=60)


async def test_a_message_aliyun_took_just_before_a_crash_is_reconciled_not_sent_again(
    store: Store, fake: FakeAliyunSms, channel: AliyunSms
) -> None:
    other = Message("other-key", "aliyun", "+8617000000401", "更早的一条", 1, "V01")
    await channel.send(other)  # the same number, another message: must not match
    second = Message("msg-2", "aliyun", "+8617000000402", BODY, 1, "V02")
    crashed = await _crashed_after_claim(store, [_message(), second])
    await channel.send(crashed[0].message())  # sent, then the worker died before recording
    await dispatch.Dispatcher(store, {"aliyun": channel}, utcnow).pump()
    sent = sorted((m.out_id, m.phone_numbers[0]) for m in fake.messages)
    assert sent == [
        ("msg-1", "17000000401"),  # once: found by its OutId, not sent again
        ("msg-2", "17000000402"),  # in doubt too, but Aliyun never had it: sent now
        ("other-key", "17000000401"),
    ]
    assert await store.outbox_counts() == {"sent": 2}


async def test_reconciliation_finds_the_message_by_its_out_id_among_many(
    fake: FakeAliyunSms, channel: AliyunSms
) -> None:
    """More than one page of the number's messages that day: the SDK pages through."""
    for i in range(60):
        await channel.send(Message(f"k{i}", "aliyun", "+8617000000401", f"第{i}条", 1, "V01"))
    found = await channel.reconcile(
        Message("k3", "aliyun", "+8617000000401", "第3条", 1, "V01"), utcnow()
    )
    missing = await channel.reconcile(_message(), utcnow() - timedelta(days=1))
    assert found is not None and found.status == "delivered"
    assert missing is None
    assert not fake.rejected


async def test_a_failed_lookup_is_transient(fake: FakeAliyunSms, channel: AliyunSms) -> None:
    closed = AliyunSms(_settings("127.0.0.1:9", timeout_s=1))
    with pytest.raises(SendError) as caught:
        await closed.reconcile(_message(), utcnow())
    assert caught.value.retryable
