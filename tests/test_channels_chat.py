"""The group-bot channels (WeCom, DingTalk, Feishu, Slack, generic webhook), each against
its local fake provider speaking the provider's HTTP API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from warnbot.channels import CHANNELS
from warnbot.channels._http import GroupBot, Reply, cn_mobile
from warnbot.channels.dingtalk import DingTalkBot, DingTalkSettings
from warnbot.channels.dingtalk import sign as dingtalk_sign
from warnbot.channels.feishu import FeishuBot, FeishuSettings
from warnbot.channels.slack import SlackSettings, SlackWebhook
from warnbot.channels.webhook import JsonWebhook, WebhookSettings
from warnbot.channels.wecom import WeComBot, WeComSettings
from warnbot.errors import ConfigError, SendError
from warnbot.fakes.chatbots import FakeDingTalk, FakeFeishu, FakeWeCom
from warnbot.fakes.webhooks import FakeReceiver, FakeSlack
from warnbot.model import Message
from warnbot.settings import Settings, load_settings

MOBILE = "+8613800000001"  # invented, E.164 as the roster keeps it
FEISHU_USER = "ou_7d8a6e6df7621556ce0d21922b676706"
SLACK_USER = "U024BE7LH"
BODY = "【暴雨橙色预警】某县气象台发布暴雨橙色预警，请立即组织转移。回复 1 确认。"
KEY, TOKEN, SECRET = "wecom-key-1", "ding-token-1", "SEC-ding-secret"
HOOK, LARK_SECRET = "feishu-hook-1", "feishu-secret"
SLACK_PATH = "/services/T000/B000/XXXXXXXX"
T0 = 1_786_000_000.0  # a fixed "now", seconds since the epoch


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No WARNBOT_* variable of the machine running the tests leaks in."""
    for name in list(os.environ):
        if name.startswith("WARNBOT_"):
            monkeypatch.delenv(name)


def message(to: str = "county", mentions: tuple[str, ...] = ()) -> Message:
    return Message(key="m-1", channel="chat", to=to, body=BODY, incident_id=7, mentions=mentions)


async def refusal(bot: GroupBot[Any], msg: Message | None = None) -> SendError:
    """The SendError ``bot`` raises for ``msg``; the bot is closed afterwards."""
    try:
        with pytest.raises(SendError) as caught:
            await bot.send(msg or message())
    finally:
        await bot.aclose()
    return caught.value


def clock(at: float = T0) -> Callable[[], float]:
    return lambda: at


# --- builders: each channel pointed at its fake -----------------------------------------------


def wecom(base_url: str, key: str = KEY, **extra: Any) -> WeComBot:
    groups = {"county": {"name": "县防指值班群", "webhook_key": key}}
    return WeComBot(
        WeComSettings.model_validate({"api_base_url": base_url, "groups": groups, **extra})
    )


def dingtalk(base_url: str, secret: str = SECRET, at: float = T0, **extra: Any) -> DingTalkBot:
    groups = {"county": {"access_token": TOKEN, "secret": secret}}
    settings = DingTalkSettings.model_validate(
        {"api_base_url": base_url, "groups": groups, **extra}
    )
    return DingTalkBot(settings, clock(at))


def feishu(
    base_url: str, secret: str = LARK_SECRET, at: float = T0, hook: str = HOOK, **extra: Any
) -> FeishuBot:
    groups = {"county": {"hook_token": hook, "secret": secret}}
    settings = FeishuSettings.model_validate({"api_base_url": base_url, "groups": groups, **extra})
    return FeishuBot(settings, clock(at))


def slack(url: str, **extra: Any) -> SlackWebhook:
    groups = {"county": {"webhook_url": url}}
    return SlackWebhook(SlackSettings.model_validate({"groups": groups, **extra}))


def webhook(url: str, secret: str | None = "loudspeaker-secret", **extra: Any) -> JsonWebhook:
    groups = {"county": {"url": url, "secret": secret}}
    return JsonWebhook(WebhookSettings.model_validate({"groups": groups, **extra}), clock())


@pytest.fixture
async def fake_wecom() -> AsyncIterator[FakeWeCom]:
    async with FakeWeCom({"county": KEY}) as fake:
        yield fake


@pytest.fixture
async def fake_dingtalk() -> AsyncIterator[FakeDingTalk]:
    async with FakeDingTalk({"county": (TOKEN, SECRET)}, clock=clock()) as fake:
        yield fake


@pytest.fixture
async def fake_feishu() -> AsyncIterator[FakeFeishu]:
    async with FakeFeishu({"county": (HOOK, LARK_SECRET)}, clock=clock()) as fake:
        yield fake


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack({"county": SLACK_PATH}) as fake:
        yield fake


@pytest.fixture
async def fake_receiver() -> AsyncIterator[FakeReceiver]:
    async with FakeReceiver({"county": "loudspeaker-secret", "open": None}) as fake:
        yield fake


# --- WeCom --------------------------------------------------------------------------------


async def test_wecom_sends_text_and_mentions_mobiles_in_mentioned_mobile_list(
    fake_wecom: FakeWeCom,
) -> None:
    bot = wecom(fake_wecom.base_url)
    receipt = await bot.send(message(mentions=(MOBILE, "zhangsan")))
    await bot.aclose()
    assert receipt.provider_id == "county:m-1"
    [sent] = fake_wecom.accepted
    assert sent.payload == {
        "msgtype": "text",
        "text": {
            "content": BODY,
            "mentioned_mobile_list": ["13800000001"],
            "mentioned_list": ["zhangsan"],
        },
    }


async def test_wecom_refuses_a_wrong_webhook_key_permanently(fake_wecom: FakeWeCom) -> None:
    error = await refusal(wecom(fake_wecom.base_url, key="wrong-key"))
    assert (error.retryable, error.code) == (False, "93000")
    assert "invalid webhook url" in error.reason and "wrong-key" not in error.reason
    assert [r.code for r in fake_wecom.refused] == [93000] and not fake_wecom.accepted


@pytest.mark.parametrize(("code", "retryable"), [(45009, True), (-1, True), (40008, False)])
async def test_wecom_rate_limit_and_busy_are_transient_other_codes_permanent(
    fake_wecom: FakeWeCom, code: int, retryable: bool
) -> None:
    fake_wecom.fail_next(code)
    error = await refusal(wecom(fake_wecom.base_url))
    assert (error.retryable, error.code) == (retryable, str(code))


# --- DingTalk -----------------------------------------------------------------------------


async def test_dingtalk_sends_signed_text_with_at_mobiles_also_in_the_content(
    fake_dingtalk: FakeDingTalk,
) -> None:
    bot = dingtalk(fake_dingtalk.base_url)
    await bot.send(message(mentions=(MOBILE,)))
    await bot.aclose()
    [sent] = fake_dingtalk.accepted
    assert sent.payload["text"]["content"] == f"{BODY}\n@13800000001"
    assert sent.payload["at"] == {"atMobiles": ["13800000001"], "atUserIds": [], "isAtAll": False}


async def test_dingtalk_refuses_a_wrong_secret(fake_dingtalk: FakeDingTalk) -> None:
    error = await refusal(dingtalk(fake_dingtalk.base_url, secret="SEC-wrong"))
    assert (error.retryable, error.code) == (False, "310000")
    assert "签名不匹配" in fake_dingtalk.refused[0].message and not fake_dingtalk.accepted


async def test_dingtalk_refuses_a_timestamp_more_than_an_hour_off(
    fake_dingtalk: FakeDingTalk,
) -> None:
    error = await refusal(dingtalk(fake_dingtalk.base_url, at=T0 - 3601))
    assert (error.retryable, error.code) == (False, "310000")
    assert "签名过期" in fake_dingtalk.refused[0].message


async def test_dingtalk_signature_with_plus_and_slash_survives_url_encoding() -> None:
    """A base64 '+' sent unescaped would arrive as a space and fail the signature."""
    at = next(t for t in range(int(T0), int(T0) + 5000) if {"+", "/"} <= set(sign_at(t)))
    async with FakeDingTalk({"county": (TOKEN, SECRET)}, clock=clock(at)) as fake:
        bot = dingtalk(fake.base_url, at=at)
        await bot.send(message())
        await bot.aclose()
        assert len(fake.accepted) == 1


def sign_at(t: int) -> str:
    return dingtalk_sign(SECRET, t * 1000)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [(130101, True), (410100, True), (-1, True), (300001, False), (310000, False)],
)
async def test_dingtalk_send_too_fast_is_transient_token_and_sign_errors_permanent(
    fake_dingtalk: FakeDingTalk, code: int, retryable: bool
) -> None:
    fake_dingtalk.fail_next(code)
    error = await refusal(dingtalk(fake_dingtalk.base_url))
    assert (error.retryable, error.code) == (retryable, str(code))


# --- Feishu -------------------------------------------------------------------------------


async def test_feishu_sends_signed_text_with_at_tags(fake_feishu: FakeFeishu) -> None:
    bot = feishu(fake_feishu.base_url)
    await bot.send(message(mentions=(FEISHU_USER,)))
    await bot.aclose()
    [sent] = fake_feishu.accepted
    assert sent.payload["msg_type"] == "text" and sent.payload["timestamp"] == str(int(T0))
    assert sent.payload["content"] == {"text": f'{BODY}\n<at user_id="{FEISHU_USER}"></at>'}


async def test_feishu_refuses_a_wrong_secret(fake_feishu: FakeFeishu) -> None:
    error = await refusal(feishu(fake_feishu.base_url, secret="wrong"))
    assert (error.retryable, error.code) == (False, "19021")
    assert not fake_feishu.accepted


async def test_feishu_refuses_a_timestamp_more_than_an_hour_off(fake_feishu: FakeFeishu) -> None:
    error = await refusal(feishu(fake_feishu.base_url, at=T0 + 3601))
    assert (error.retryable, error.code) == (False, "19021")


async def test_feishu_refuses_an_unknown_hook_token_permanently(fake_feishu: FakeFeishu) -> None:
    error = await refusal(feishu(fake_feishu.base_url, hook="not-a-hook"))
    assert (error.retryable, error.code) == (False, "19001")


@pytest.mark.parametrize(("code", "retryable"), [(9499, True), (11232, True), (19024, False)])
async def test_feishu_rate_limits_are_transient_keyword_refusal_permanent(
    fake_feishu: FakeFeishu, code: int, retryable: bool
) -> None:
    fake_feishu.fail_next(code)
    error = await refusal(feishu(fake_feishu.base_url))
    assert (error.retryable, error.code) == (retryable, str(code))


def test_an_old_feishu_answer_with_only_statuscode_still_reads_as_its_code() -> None:
    reply = Reply(200, "", json={"Extra": None, "StatusCode": 0, "StatusMessage": "success"})
    assert reply.code("code", "StatusCode") == 0


# --- Slack --------------------------------------------------------------------------------


async def test_slack_posts_text_with_user_mentions(fake_slack: FakeSlack) -> None:
    bot = slack(fake_slack.url_for("county"))
    await bot.send(message(mentions=(SLACK_USER,)))
    await bot.aclose()
    assert fake_slack.accepted[0].payload == {"text": f"{BODY}\n<@{SLACK_USER}>"}


async def test_slack_refuses_an_unknown_webhook_url_permanently(fake_slack: FakeSlack) -> None:
    error = await refusal(slack(fake_slack.base_url + "/services/T000/B000/wrong"))
    assert (error.retryable, error.code) == (False, "404")
    assert "no_service" in error.reason and "wrong" not in error.reason


async def test_slack_rate_limit_is_transient_and_says_when_to_retry(fake_slack: FakeSlack) -> None:
    fake_slack.fail_next(429, "rate_limited", retry_after=30)
    error = await refusal(slack(fake_slack.url_for("county")))
    assert (error.retryable, error.code) == (True, "429")
    assert "Retry-After 30 s" in error.reason


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
    ],
)
async def test_slack_client_errors_are_permanent(
    fake_slack: FakeSlack, status: int, body: str
) -> None:
    fake_slack.fail_next(status, body)
    error = await refusal(slack(fake_slack.url_for("county")))
    assert (error.retryable, error.code) == (False, str(status))
    assert body in error.reason


# --- generic webhook ----------------------------------------------------------------------


async def test_webhook_posts_signed_json_for_broadcast_systems(fake_receiver: FakeReceiver) -> None:
    bot = webhook(fake_receiver.url_for("county"))
    await bot.send(message(mentions=(MOBILE,)))
    await bot.aclose()
    assert fake_receiver.accepted[0].payload == {
        "key": "m-1",
        "incident_id": 7,
        "text": BODY,
        "mentions": [MOBILE],
        "sent_at": "2026-08-06T07:06:40+00:00",
    }


async def test_webhook_with_a_wrong_secret_is_refused(fake_receiver: FakeReceiver) -> None:
    error = await refusal(webhook(fake_receiver.url_for("county"), secret="wrong"))
    assert (error.retryable, error.code) == (False, "401")
    assert fake_receiver.refused[0].message == "bad signature"


async def test_webhook_to_an_unsigned_target_sends_no_signature() -> None:
    seen: list[str | None] = []

    async def receive(request: web.Request) -> web.Response:
        seen.append(request.headers.get("X-Warnbot-Signature"))
        return web.Response(status=204)

    async with serve(receive) as url:
        bot = webhook(url, secret=None)
        await bot.send(message())
        await bot.aclose()
    assert seen == [None]


def test_the_webhook_signature_is_the_hex_hmac_of_the_raw_body() -> None:
    from warnbot.channels.webhook import signature

    body = b'{"text":"x"}'
    expected = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature("k", body) == f"sha256={expected}"


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(408, True), (429, True), (500, True), (503, True), (400, False), (404, False), (422, False)],
)
async def test_webhook_408_429_5xx_are_transient_other_4xx_permanent(
    fake_receiver: FakeReceiver, status: int, retryable: bool
) -> None:
    fake_receiver.fail_next(status, "refused")
    error = await refusal(webhook(fake_receiver.url_for("county")))
    assert (error.retryable, error.code) == (retryable, str(status))


# --- every channel ------------------------------------------------------------------------

BUILDERS: dict[str, Callable[..., GroupBot[Any]]] = {
    "wecom": wecom,
    "dingtalk": dingtalk,
    "feishu": feishu,
    "slack": lambda url, **extra: slack(url + SLACK_PATH, **extra),
    "webhook": lambda url, **extra: webhook(url + "/county", **extra),
}


@pytest.mark.parametrize("name", BUILDERS)
async def test_an_unknown_group_is_permanent(name: str) -> None:
    error = await refusal(BUILDERS[name]("http://127.0.0.1:9"), message(to="no_such_group"))
    assert not error.retryable and "no_such_group" in error.reason


@pytest.mark.parametrize("name", BUILDERS)
async def test_an_unreachable_endpoint_is_transient(name: str) -> None:
    error = await refusal(BUILDERS[name](f"http://127.0.0.1:{closed_port()}"))
    assert error.retryable and "unreachable" in error.reason
    assert SECRET not in error.reason and KEY not in error.reason and TOKEN not in error.reason


@pytest.mark.parametrize("name", BUILDERS)
async def test_a_provider_slower_than_the_timeout_is_transient(name: str) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(60)
        return web.Response(text="late")

    async with serve(slow, "/{tail:.*}") as url:
        error = await refusal(BUILDERS[name](url, timeout_s=0.2))
    assert error.retryable and "TimeoutError" in error.reason


async def test_a_channel_keeps_one_session_and_closes_it(fake_wecom: FakeWeCom) -> None:
    bot = wecom(fake_wecom.base_url)
    await bot.send(message())
    session = bot.http.session
    await bot.send(message())
    assert session is bot.http.session and session is not None
    await bot.aclose()
    assert session.closed


def test_roster_phones_become_the_bare_mainland_numbers_bots_at() -> None:
    assert [cn_mobile(m) for m in (MOBILE, "13800000001", "ou_x", "+15005550006")] == [
        "13800000001",
        "13800000001",
        None,
        None,
    ]


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class serve:
    """A one-route aiohttp server on 127.0.0.1 for behaviours no fake provider has."""

    def __init__(self, handler: Callable[[web.Request], Any], path: str = "/hook") -> None:
        self.app = web.Application()
        self.app.router.add_post(path, handler)
        self.path = "" if "{" in path else path
        self.runner = web.AppRunner(self.app, shutdown_timeout=0.1)

    async def __aenter__(self) -> str:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}{self.path}"

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


# --- settings and the registry -------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "warnbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_dingtalk_secret_in_the_toml_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[channels.dingtalk.groups.x]\nsecret = "SECabc"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert any(
        "channels.dingtalk.groups.x.secret: secrets are not read" in p
        for p in caught.value.problems
    )


async def test_dingtalk_secrets_from_the_environment_reach_the_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pydantic-settings splits on '__' and merges the environment into the TOML's group."""
    monkeypatch.setenv("WARNBOT_CHANNELS__DINGTALK__GROUPS__X__ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("WARNBOT_CHANNELS__DINGTALK__GROUPS__X__SECRET", SECRET)
    async with FakeDingTalk({"x": (TOKEN, SECRET)}) as fake:
        path = write(tmp_path, f'[channels.dingtalk]\napi_base_url = "{fake.base_url}"\n'
                     '[channels.dingtalk.groups.x]\nname = "县防指值班群"\n')  # fmt: skip
        bot = DingTalkBot.from_settings(load_settings(path))
        await bot.send(message(to="x"))
        await bot.aclose()
        assert bot.settings.groups["x"].name == "县防指值班群"
        assert [a.group for a in fake.accepted] == ["x"]


def test_environment_group_names_arrive_lower_cased(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARNBOT_CHANNELS__WECOM__GROUPS__County_A__WEBHOOK_KEY", KEY)
    bot = WeComBot.from_settings(load_settings())
    assert list(bot.settings.groups) == ["county_a"]


def test_a_group_name_the_environment_could_not_reach_is_refused() -> None:
    settings = Settings(channels={"wecom": {"groups": {"County-A": {"webhook_key": KEY}}}})
    with pytest.raises(ConfigError) as caught:
        WeComBot.from_settings(settings)
    [problem] = caught.value.problems
    assert problem.startswith("channels.wecom.groups: ") and "lower-case" in problem


def test_an_invalid_section_lists_every_problem_with_its_key() -> None:
    settings = Settings(channels={"dingtalk": {"timeout_s": 0, "groups": {"x": {}}}})
    with pytest.raises(ConfigError) as caught:
        CHANNELS["dingtalk"](settings)
    assert caught.value.problems == [
        "channels.dingtalk.timeout_s: Input should be greater than 0",
        "channels.dingtalk.groups.x.access_token: Field required",
        "channels.dingtalk.groups.x.secret: Field required",
    ]


SECTIONS: dict[str, dict[str, Any]] = {
    "wecom": {"webhook_key": KEY},
    "dingtalk": {"access_token": TOKEN, "secret": SECRET},
    "feishu": {"hook_token": HOOK, "secret": LARK_SECRET},
    "slack": {"webhook_url": "https://hooks.slack.com/services/T0/B0/x"},
    "webhook": {"url": "https://broadcast.example.cn/api/warnings"},
}


@pytest.mark.parametrize("name", SECTIONS)
async def test_the_registry_builds_each_channel_from_settings(name: str) -> None:
    settings = Settings(channels={name: {"timeout_s": 3, "groups": {"x": SECTIONS[name]}}})
    channel = CHANNELS[name](settings)
    assert channel.name == name
    assert isinstance(channel, GroupBot) and channel.http.timeout.total == 3
    await channel.aclose()
