"""Local stand-ins for the chat-group bots (WeCom, DingTalk, Feishu) for tests and demos.

Each fake is a real aiohttp app on ``127.0.0.1`` speaking its provider's HTTP
API, and refuses what the provider refuses, with the provider's own error
codes: an unknown WeCom key, a DingTalk access token, signature or timestamp
(DingTalk and Feishu allow one hour of clock difference), a Feishu hook token
or signature. So a signing bug in a channel fails its tests. What a fake
accepts is in :attr:`FakeBot.accepted`, what it refused in :attr:`FakeBot.refused`;
``fail_next(code)`` makes the next valid requests fail with a provider code.

Usage::

    async with FakeDingTalk({"county": ("token", "SECsecret")}) as fake:
        settings = {"api_base_url": fake.base_url, "groups": {...}}
        ...
        assert fake.accepted[0].payload["at"]["atMobiles"] == ["13800000001"]

The Slack and generic-webhook stand-ins are in :mod:`warnbot.fakes.webhooks`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from aiohttp import web

Clock = Callable[[], float]
MAX_CLOCK_SKEW_S = 3600  # DingTalk and Feishu: "与请求调用时间误差不能超过1小时"


@dataclass(frozen=True)
class Accepted:
    """One message a fake took: the group it went to, the JSON body as sent, and when."""

    group: str
    payload: dict[str, Any]
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Refusal:
    """A request a fake refused as its provider would; ``group`` is None when unknown."""

    group: str | None
    code: int | str
    message: str


class Refused(Exception):
    """Raised inside a handler to answer with the provider's error for ``code``."""

    def __init__(self, code: int | str, message: str = "", group: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.group = code, message, group


class FakeBot:
    """An aiohttp app on ``host``:``port`` (0: any free port) with records and failure hooks.

    Subclasses name their ``PATH``, check a request in ``_check`` (returning the
    group it is for, or raising ``Refused``) and shape their answers.
    """

    PATH: ClassVar[str]

    def __init__(self, *, clock: Clock = time.time, host: str = "127.0.0.1", port: int = 0) -> None:
        self.clock, self.host, self.port, self.base_url = clock, host, port, ""
        self.accepted: list[Accepted] = []
        self.refused: list[Refusal] = []
        self._failures: deque[Callable[[], web.StreamResponse]] = deque()
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen; ``base_url`` is then where the channel should point."""
        app = web.Application()
        app.router.add_post(self.PATH, self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://{self.host}:{self.port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _check(self, request: web.Request, raw: bytes) -> str:
        raise NotImplementedError

    def _error(self, code: int | str, message: str) -> web.StreamResponse:
        raise NotImplementedError

    def _inject(self, answer: Callable[[], web.StreamResponse], count: int) -> None:
        self._failures.extend([answer] * count)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Check the request as the provider would, then an injected failure, else accept."""
        raw = await request.read()
        try:
            group = self._check(request, raw)
        except Refused as e:
            self.refused.append(Refusal(e.group, e.code, e.message))
            return self._error(e.code, e.message)
        if self._failures:
            return self._failures.popleft()()
        self.accepted.append(Accepted(group, json.loads(raw)))
        return self._ok()

    def _ok(self) -> web.StreamResponse:
        raise NotImplementedError


def json_object(raw: bytes, code: int | str, message: str) -> dict[str, Any]:
    """The body as a JSON object, or the provider's refusal of a malformed body."""
    try:
        value = json.loads(raw)
    except ValueError:
        raise Refused(code, message) from None
    if not isinstance(value, dict):
        raise Refused(code, message)
    return value


def text_of(body: Mapping[str, Any], *path: str) -> str:
    """The string at ``path`` in ``body``, or "" when absent or not a string."""
    value: Any = body
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, str) else ""


def hmac_b64(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def same(given: str, expected: str) -> bool:
    return secrets.compare_digest(given.encode(), expected.encode())


class CodedBot(FakeBot):
    """Providers answering HTTP 200 with a JSON error code (0 is success)."""

    CODE: ClassVar[str] = "errcode"
    MESSAGE: ClassVar[str] = "errmsg"
    MESSAGES: ClassVar[dict[int, str]] = {}
    OK: ClassVar[dict[str, Any]] = {"errcode": 0, "errmsg": "ok"}

    def fail_next(self, code: int, count: int = 1) -> None:
        """Make the next ``count`` valid requests fail with provider error ``code``."""
        message = self.MESSAGES.get(code, f"injected failure {code}")
        self._inject(lambda: self._error(code, message), count)

    def _error(self, code: int | str, message: str) -> web.StreamResponse:
        return web.json_response({self.CODE: code, self.MESSAGE: message})

    def _ok(self) -> web.StreamResponse:
        return web.json_response(self.OK)


class FakeWeCom(CodedBot):
    """WeCom's group-robot endpoint ``POST /cgi-bin/webhook/send?key=…``.

    ``keys`` maps group name → webhook key. Only ``text`` messages are served.
    """

    PATH = "/cgi-bin/webhook/send"
    MESSAGES: ClassVar[dict[int, str]] = {
        -1: "system busy",
        40008: "invalid message type",
        44004: "empty content",
        45009: "api freq out of limit",
        93000: "invalid webhook url",
    }

    def __init__(self, keys: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.groups_by_key = {key: group for group, key in keys.items()}

    def _error(self, code: int | str, message: str) -> web.StreamResponse:
        """WeCom appends a hint and a link to its error query page."""
        hint = f"{message}, hint: [{secrets.randbelow(10**20)}], from ip: 127.0.0.1, more info"
        return super()._error(
            code, f"{hint} at https://open.work.weixin.qq.com/devtool/query?e={code}"
        )

    def _check(self, request: web.Request, raw: bytes) -> str:
        group = self.groups_by_key.get(request.query.get("key", ""))
        if group is None:
            raise Refused(93000, self.MESSAGES[93000])
        body = json_object(raw, 40058, "invalid Request Parameter")
        if body.get("msgtype") != "text":
            raise Refused(40008, self.MESSAGES[40008], group)
        if not text_of(body, "text", "content"):
            raise Refused(44004, self.MESSAGES[44004], group)
        return group


class FakeDingTalk(CodedBot):
    """DingTalk's custom-robot endpoint ``POST /robot/send?access_token=&timestamp=&sign=``.

    ``robots`` maps group name → (access token, 加签 secret). Only ``text`` is served.
    ``per_window`` (count, seconds) refuses a robot's message beyond ``count`` in any
    ``seconds`` with 130101, as DingTalk does beyond 20 a minute; off by default.
    """

    PATH = "/robot/send"
    MESSAGES: ClassVar[dict[int, str]] = {
        -1: "系统繁忙",
        43004: "无效的HTTP HEADER Content-Type",
        130101: "send too fast, exceed 20 times per minute",
        300001: "token is not exist",
        40035: "缺少参数 json",
    }
    SIGN_MISMATCH = (
        "description:机器人发送签名不匹配;solution:请确认签名和生成签名的时间戳必须都放在调用的"
        "网址中，请确认机器人的密钥加密和填写正确;"
    )
    SIGN_EXPIRED = (
        "description:机器人发送签名过期;solution:签名生成时间和发送时间请保持在 timestampms 以内;"
    )

    def __init__(
        self,
        robots: Mapping[str, tuple[str, str]],
        per_window: tuple[int, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.robots = {token: (group, secret) for group, (token, secret) in robots.items()}
        self.per_window = per_window
        self._sent: dict[str, deque[float]] = {}

    def _check(self, request: web.Request, raw: bytes) -> str:
        robot = self.robots.get(request.query.get("access_token", ""))
        if robot is None:
            raise Refused(300001, self.MESSAGES[300001])
        group, secret = robot
        self._check_sign(request.query.get("timestamp", ""), request.query.get("sign", ""), secret)
        if request.content_type != "application/json":
            raise Refused(43004, self.MESSAGES[43004], group)
        body = json_object(raw, 40035, self.MESSAGES[40035])
        if body.get("msgtype") != "text" or not text_of(body, "text", "content"):
            raise Refused(40035, self.MESSAGES[40035], group)
        self._count(group)
        return group

    def _count(self, group: str) -> None:
        """The robot's own flow control: too many in the window is refused (130101)."""
        if self.per_window is None:
            return
        count, window_s = self.per_window
        now = time.monotonic()
        sent = self._sent.setdefault(group, deque())
        while sent and sent[0] <= now - window_s:
            sent.popleft()
        if len(sent) >= count:
            raise Refused(130101, self.MESSAGES[130101], group)
        sent.append(now)

    def _check_sign(self, timestamp: str, sign: str, secret: str) -> None:
        """Milliseconds within an hour of now, and the HMAC keyed by the secret."""
        if not timestamp.isdigit() or abs(self.clock() - int(timestamp) / 1000) > MAX_CLOCK_SKEW_S:
            raise Refused(310000, self.SIGN_EXPIRED)
        if not same(sign, hmac_b64(secret.encode(), f"{timestamp}\n{secret}".encode())):
            raise Refused(310000, self.SIGN_MISMATCH)


class FakeFeishu(CodedBot):
    """Feishu's custom-bot endpoint ``POST /open-apis/bot/v2/hook/{token}``.

    ``bots`` maps group name → (hook token, signing secret). Only ``text`` is served.
    """

    PATH = "/open-apis/bot/v2/hook/{token}"
    MESSAGES: ClassVar[dict[int, str]] = {
        19001: "param invalid: incoming webhook access token invalid",
        19002: "params error, msg_type need",
        19021: "sign match fail or timestamp is not within one hour from current time",
        19024: "Key Words Not Found",
    }
    OK: ClassVar[dict[str, Any]] = {
        "StatusCode": 0,
        "StatusMessage": "success",
        "code": 0,
        "data": {},
        "msg": "success",
    }

    def __init__(self, bots: Mapping[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bots = {token: (group, secret) for group, (token, secret) in bots.items()}

    def _error(self, code: int | str, message: str) -> web.StreamResponse:
        return web.json_response({"code": code, "data": {}, "msg": message})

    def _check(self, request: web.Request, raw: bytes) -> str:
        bot = self.bots.get(request.match_info["token"])
        if bot is None:
            raise Refused(19001, self.MESSAGES[19001])
        group, secret = bot
        body = json_object(raw, 19002, self.MESSAGES[19002])
        self._check_sign(str(body.get("timestamp", "")), str(body.get("sign", "")), secret)
        if body.get("msg_type") != "text" or not text_of(body, "content", "text"):
            raise Refused(19002, self.MESSAGES[19002], group)
        return group

    def _check_sign(self, timestamp: str, sign: str, secret: str) -> None:
        """Seconds within an hour of now, and the HMAC *keyed by* "timestamp\\nsecret"."""
        fresh = timestamp.isdigit() and abs(self.clock() - int(timestamp)) <= MAX_CLOCK_SKEW_S
        expected = hmac_b64(f"{timestamp}\n{secret}".encode(), b"")
        if not (fresh and same(sign, expected)):
            raise Refused(19021, self.MESSAGES[19021])
