"""A local stand-in for Aliyun SMS (Dysmsapi 2017-05-25 ``SendSms``) for the tests and demo.

Pointing the official SDK's ``endpoint`` here (``protocol = "http"``) exercises
warnbot's real code path without a network, an account or cost. The SDK (4.x on
``alibabacloud-tea-openapi`` 0.4) sends ``POST /?<params>`` with the action in
``x-acs-action``, signed with signature V3 (``ACS3-HMAC-SHA256``). This server
checks it as Aliyun's gateway does, from the published algorithm (help.aliyun.com
"V3版本请求体&签名机制"), not from the SDK's code, so a signing bug cannot pass both:

1. CanonicalRequest = method, URI-encoded path, canonical query (RFC 3986
   percent-encoding of each name and value, ``%20`` for a space, sorted by name),
   one ``name:value`` line per signed header, the signed header names joined by
   ``;``, and the hex SHA-256 of the body as received;
2. StringToSign = ``ACS3-HMAC-SHA256\\n`` + hex SHA-256 of the CanonicalRequest;
3. Signature = hex HMAC-SHA256(AccessKeySecret, StringToSign).

``host`` and every ``x-acs-*`` header must be signed; the date must be within 15
minutes and each nonce is accepted once. Answers use Aliyun's bodies: gateway
errors ``{RequestId, HostId, Code, Message, Recommend}`` with HTTP 4xx; SendSms
results ``{RequestId, Code, Message, BizId}`` with HTTP 200, also for business
errors such as ``isv.MOBILE_NUMBER_ILLEGAL``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Self
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from multidict import CIMultiDictProxy

ALGORITHM = "ACS3-HMAC-SHA256"
VERSION = "2017-05-25"
MAX_SKEW_S = 15 * 60
ACTIONS = ("SendSms", "QuerySendDetails")
BEIJING = timezone(timedelta(hours=8))  # Aliyun's pushes state Beijing time
REQUIRED_SIGNED = ("host", "x-acs-action", "x-acs-content-sha256", "x-acs-date")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_MAINLAND = re.compile(r"(?:\+86|0086|86)?1[3-9]\d{9}")
_VARIABLE = re.compile(r"\$\{(\w+)\}")
_LINK = re.compile(r"https?://|www\.", re.IGNORECASE)  # links must be fixed template text

#: HTTP status and message Aliyun answers with each code: gateway errors first, then
#: SendSms results (HTTP 200 with a business code).
ERRORS: dict[str, tuple[int, str]] = {
    "IncompleteSignature": (400, "The request signature does not conform to Aliyun standards."),
    "InvalidAccessKeyId.NotFound": (404, "Specified access key is not found."),
    "SignatureDoesNotMatch": (400, "Specified signature does not match our calculation."),
    "InvalidTimeStamp.Format": (400, "Specified time stamp or date value is not well formatted."),
    "InvalidTimeStamp.Expired": (400, "Specified time stamp or date value is expired."),
    "SignatureNonceUsed": (400, "Specified signature nonce was used already."),
    "InvalidAction.NotFound": (
        404,
        "Specified api is not found, please check your url and method.",
    ),
    "Throttling.User": (400, "Request was denied due to user flow control."),
    "ServiceUnavailable": (503, "The request has failed due to a temporary failure of the server."),
    "isv.BUSINESS_LIMIT_CONTROL": (200, "触发分钟级流控Permits:1"),
    "isv.MOBILE_NUMBER_ILLEGAL": (200, "非法手机号"),
    "isv.AMOUNT_NOT_ENOUGH": (200, "账户余额不足"),
    "isv.SMS_SIGNATURE_ILLEGAL": (200, "该账号下找不到对应签名"),
    "isv.SMS_TEMPLATE_ILLEGAL": (200, "该账号下找不到对应模板"),
    "isv.TEMPLATE_MISSING_PARAMETERS": (200, "模板变量缺少对应参数值"),
    "isv.INVALID_JSON_PARAM": (200, "JSON参数不合法,只接受字符串值"),
    "isv.PARAM_NOT_SUPPORT_URL": (200, "不支持url为变量"),
    "isv.PARAM_LENGTH_LIMIT": (200, "参数超出长度限制"),
    "isp.SYSTEM_ERROR": (200, "isp.SYSTEM_ERROR"),
}

#: Delivery-receipt codes (SmsReport ``err_code``) of mainland SMS, with Aliyun's text.
RECEIPT_MESSAGES: dict[str, str] = {
    "MOBILE_NOT_ON_SERVICE": "停机、空号、暂停服务、关机、不在服务区",
    "MOBILE_ACCOUNT_ABNORMAL": "用户账户异常、携号转网、欠费等",
    "MOBILE_IN_BLACK": "手机号在黑名单",
    "MOBLLE_TERMINAL_ERROR": "手机终端问题、内存满、SIM卡满、非法设备等",  # sic: Aliyun's spelling
    "MOBILE_SEND_LIMIT": "单个号码日、月发送上限，流控超限，频繁发送超限",
    "CONTENT_KEYWORD": "内容关键字拦截",
    "USER_REJECT": "用户手机退订此业务、产品未开通",
    "SP_UNKNOWN_ERROR": "运营商未知错误",
}


def percent_encode(text: str) -> str:
    """RFC 3986: unreserved characters stay, every other UTF-8 byte becomes ``%XX``."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode())


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    """Encoded ``name=value`` pairs sorted by name, joined by ``&``."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_request(
    request: web.Request, pairs: list[tuple[str, str]], signed: list[str], body: bytes
) -> str:
    """The V3 CanonicalRequest of ``request`` as received."""
    headers = "".join(f"{name}:{_header(request.headers, name)}\n" for name in signed)
    path = "/".join(percent_encode(part) for part in request.path.split("/"))
    payload = hashlib.sha256(body).hexdigest()
    return "\n".join(
        [request.method, path, canonical_query(pairs), headers, ";".join(signed), payload]
    )


def _header(headers: CIMultiDictProxy[str], name: str) -> str:
    return ",".join(sorted(v.strip() for v in headers.getall(name, [])))


def string_to_sign(canonical: str) -> str:
    return f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def sign(secret: str, canonical: str) -> str:
    """Hex HMAC-SHA256 of the StringToSign under the AccessKeySecret."""
    return hmac.new(secret.encode(), string_to_sign(canonical).encode(), "sha256").hexdigest()


@dataclass(frozen=True)
class Authorization:
    """``ACS3-HMAC-SHA256 Credential=…,SignedHeaders=a;b,Signature=…``, parsed."""

    access_key_id: str
    signed_headers: list[str]
    signature: str

    @classmethod
    def parse(cls, value: str) -> Authorization | None:
        algorithm, _, rest = value.partition(" ")
        fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
        if algorithm != ALGORITHM or set(fields) != {"Credential", "SignedHeaders", "Signature"}:
            return None
        signed = fields["SignedHeaders"].split(";")
        return cls(fields["Credential"], signed, fields["Signature"])


class AliyunError(Exception):
    """An answer other than ``OK``: a gateway error (HTTP 4xx/5xx) or a SendSms code
    (HTTP 200). Status and message default to :data:`ERRORS`."""

    def __init__(self, code: str, message: str = "", status: int | None = None) -> None:
        known_status, known_message = ERRORS.get(code, (200, code))
        self.code, self.message = code, message or known_message
        self.status = known_status if status is None else status
        super().__init__(f"{self.status} {code}: {self.message}")

    def response(self, host: str) -> web.Response:
        body = {"RequestId": request_id(), "Code": self.code, "Message": self.message}
        if self.status != 200:
            recommend = f"https://api.aliyun.com/troubleshoot?q={self.code}&product=Dysmsapi"
            body |= {"HostId": host, "Recommend": recommend}
        return web.json_response(body, status=self.status)


@dataclass
class FakeSms:
    """One accepted SendSms; ``text`` is what the phone shows, signature first."""

    biz_id: str
    phone_numbers: list[str]
    sign_name: str
    template_code: str
    template_param: dict[str, str]
    out_id: str | None
    text: str
    params: dict[str, str]
    sent_at: datetime = field(default_factory=lambda: datetime.now(BEIJING))
    status: int = 3  # QuerySendDetails' SendStatus: 1 awaiting the report, 2 failed, 3 delivered
    err_code: str = ""  # the receipt's code when it failed (SmsReport ``err_code``)
    reported: bool = False  # its delivery receipt was pushed

    def detail(self, phone: str) -> dict[str, Any]:
        """One ``SmsSendDetailDTO`` of QuerySendDetails for ``phone``."""
        when = self.sent_at.strftime("%Y-%m-%d %H:%M:%S")
        return {
            "PhoneNum": phone,
            "SendStatus": self.status,
            "ErrCode": {1: "", 2: self.err_code or "MK:0001", 3: "DELIVERED"}[self.status],
            "TemplateCode": self.template_code,
            "Content": self.text,
            "SendDate": when,
            "ReceiveDate": when if self.status == 3 else "",
            "OutId": self.out_id or "",
        }

    def receipts(self) -> list[dict[str, Any]]:
        """The SmsReport items Aliyun pushes for this message, one per number."""
        now = datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        failed = self.status == 2
        return [
            {
                "phone_number": phone,
                "send_time": self.sent_at.strftime("%Y-%m-%d %H:%M:%S"),
                "report_time": now,
                "success": not failed,
                "err_code": self.err_code if failed else "DELIVERED",
                "err_msg": RECEIPT_MESSAGES.get(self.err_code, "") if failed else "用户接收成功",
                "sms_size": str(_parts(self.text)),
                "biz_id": self.biz_id,
                "out_id": self.out_id or "",
            }
            for phone in self.phone_numbers
        ]


@dataclass(frozen=True)
class Rejection:
    """A request refused by the gateway checks (authentication, action, parameters)."""

    status: int
    code: str
    message: str
    params: dict[str, str]


def _parts(text: str) -> int:
    """Aliyun bills 70 characters as one SMS, longer ones 67 a part."""
    return 1 if len(text) <= 70 else -(-len(text) // 67)


def request_id() -> str:
    return str(uuid.uuid4()).upper()


def new_biz_id() -> str:
    """Shaped like Aliyun's: digits, ``^``, a batch index."""
    return f"{secrets.randbelow(10**18):018d}^0"


class FakeAliyunSms:
    """Dysmsapi ``SendSms`` and ``QuerySendDetails`` on ``127.0.0.1``; point the SDK at
    :attr:`endpoint` over http."""

    def __init__(
        self,
        access_key_id: str = "LTAI5tFakeAccessKeyId000",
        access_key_secret: str = "fake-access-key-secret",
        *,
        sign_names: tuple[str, ...] = ("应急预警",),
        templates: Mapping[str, str] | None = None,
        max_variable_chars: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.access_key_id, self.access_key_secret = access_key_id, access_key_secret
        self.sign_names = sign_names
        self.templates = dict(templates or {"SMS_123456789": "${content}"})
        # Notification templates allow 35 characters per variable unless approved longer.
        self.max_variable_chars = max_variable_chars
        self.host, self.port = host, port
        self.messages: list[FakeSms] = []
        self.rejected: list[Rejection] = []
        self.requests = 0  # every request that reached the server, refused or not
        self.answer_delay_s = 0.0  # SendSms takes the message, then answers this late
        self.accepted = asyncio.Event()  # set as each SendSms is taken (a test clears it)
        self._failures: deque[AliyunError] = deque()
        self._undeliverable: dict[str, str] = {}  # 11-digit number → receipt err_code
        self._nonces: set[str] = set()
        self._runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        """What the SDK's ``Config.endpoint`` takes: ``host:port``, no scheme."""
        return f"{self.host}:{self.port}"

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail_next(
        self, code: str, message: str = "", *, status: int | None = None, count: int = 1
    ) -> None:
        """Answer the next ``count`` valid SendSms with ``code``; status and message as
        Aliyun answers it (:data:`ERRORS`; HTTP 200 for an unknown code) unless given."""
        self._failures.extend(AliyunError(code, message, status) for _ in range(count))

    def undeliverable(self, phone: str, code: str = "MOBILE_NOT_ON_SERVICE") -> None:
        """SendSms to ``phone`` (11 digits) is taken, but its receipt says it failed with
        ``code`` (:data:`RECEIPT_MESSAGES`), as a number out of service does."""
        self._undeliverable[phone] = code

    async def push_reports(self, url: str, messages: list[FakeSms] | None = None) -> dict[str, Any]:
        """POST the SmsReport batch (状态报告) of ``messages`` — by default every message
        whose receipt was not pushed yet — to ``url``, as Aliyun's HTTP batch push does;
        returns the receiver's JSON answer with its HTTP ``status``. A message counts as
        reported only when the receiver answered 200, as Aliyun pushes again otherwise."""
        batch = [m for m in self.messages if not m.reported] if messages is None else messages
        answer = await _push(url, [item for m in batch for item in m.receipts()])
        for m in batch:
            m.reported = m.reported or answer["status"] == 200
        return answer

    async def push_up(self, url: str, replies: list[tuple[str, str]]) -> dict[str, Any]:
        """POST an SmsUp batch (上行消息) of ``(phone_number, content)`` to ``url``, as
        Aliyun's HTTP batch push does; returns the receiver's JSON answer."""
        now = datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        batch = [
            {"phone_number": phone, "content": content, "send_time": now, "dest_code": "1234"}
            | {"sequence_id": str(secrets.randbelow(10**10))}
            for phone, content in replies
        ]
        return await _push(url, batch)

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        pairs = parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True)
        if request.content_type == "application/x-www-form-urlencoded":
            pairs += parse_qsl(body.decode(errors="replace"), keep_blank_values=True)
        try:
            action = self._authenticate(request, pairs, body)
            if action == "QuerySendDetails":
                return self._query_send_details(dict(pairs))
            return await self._send_sms(dict(pairs))
        except AliyunError as error:
            if error.status != 200:
                self.rejected.append(
                    Rejection(error.status, error.code, error.message, dict(pairs))
                )
            return error.response(request.host)

    def _authenticate(self, request: web.Request, pairs: list[tuple[str, str]], body: bytes) -> str:
        """Aliyun's gateway checks, in its order: form, key, signature, time, nonce, action."""
        auth = Authorization.parse(request.headers.get("Authorization", ""))
        if auth is None or not _signs_enough(request, auth.signed_headers):
            raise AliyunError("IncompleteSignature")
        if auth.access_key_id != self.access_key_id:
            raise AliyunError("InvalidAccessKeyId.NotFound")
        canonical = canonical_request(request, pairs, auth.signed_headers, body)
        if not hmac.compare_digest(sign(self.access_key_secret, canonical), auth.signature):
            message = ERRORS["SignatureDoesNotMatch"][1]
            server = string_to_sign(canonical).replace("\n", " ")
            raise AliyunError(
                "SignatureDoesNotMatch", f"{message} server StringToSign is [{server}]"
            )
        self._check_fresh(request.headers)
        action = request.headers.get("x-acs-action", "")
        if action not in ACTIONS or request.headers.get("x-acs-version") != VERSION:
            raise AliyunError("InvalidAction.NotFound")
        if request.path != "/":
            raise AliyunError("InvalidAction.NotFound")
        return action

    def _check_fresh(self, headers: CIMultiDictProxy[str]) -> None:
        """A date within 15 minutes and a nonce never seen: a replay is refused."""
        try:
            date = datetime.strptime(headers.get("x-acs-date", ""), "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise AliyunError("InvalidTimeStamp.Format") from None
        if abs((datetime.now(UTC) - date.replace(tzinfo=UTC)).total_seconds()) > MAX_SKEW_S:
            raise AliyunError("InvalidTimeStamp.Expired")
        nonce = headers.get("x-acs-signature-nonce", "")
        if not nonce or nonce in self._nonces:
            raise AliyunError("SignatureNonceUsed")
        self._nonces.add(nonce)

    def _query_send_details(self, params: dict[str, str]) -> web.Response:
        """QuerySendDetails: one number's messages of one day (Beijing time), a page at a
        time, optionally one BizId; Aliyun's answer shape, newest first."""
        for name in ("PhoneNumber", "SendDate", "PageSize", "CurrentPage"):
            if not params.get(name):
                raise AliyunError(f"Missing{name}", f"{name} is mandatory for this action.", 400)
        phone, day = params["PhoneNumber"], params["SendDate"]
        size, page = _int_param(params, "PageSize", 1, 50), _int_param(params, "CurrentPage", 1)
        if not re.fullmatch(r"\d{8}", day):
            raise AliyunError("isv.INVALID_PARAMETERS", "SendDate is mandatory (yyyyMMdd)", 200)
        found = [
            m
            for m in reversed(self.messages)
            if phone in m.phone_numbers
            and m.sent_at.strftime("%Y%m%d") == day
            and params.get("BizId", m.biz_id) == m.biz_id
        ]
        details = [m.detail(phone) for m in found[(page - 1) * size : page * size]]
        body = {
            "RequestId": request_id(),
            "Code": "OK",
            "Message": "OK",
            "TotalCount": len(found),
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": details},
        }
        return web.json_response(body)

    async def _send_sms(self, params: dict[str, str]) -> web.Response:
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                raise AliyunError(f"Missing{name}", f"{name} is mandatory for this action.", 400)
        if self._failures:
            raise self._failures.popleft()
        message = self._accept(params)
        self.messages.append(message)
        self.accepted.set()
        body = {"RequestId": request_id(), "Code": "OK", "Message": "OK", "BizId": message.biz_id}
        if self.answer_delay_s:  # taken, but the sender may give up waiting for the answer
            await asyncio.sleep(self.answer_delay_s)
        return web.json_response(body)

    def _accept(self, params: dict[str, str]) -> FakeSms:
        """The SendSms business checks; each failure is an HTTP 200 with its ``isv.*`` code."""
        phones, sign, code = (
            params["PhoneNumbers"].split(","),
            params["SignName"],
            params["TemplateCode"],
        )
        if not all(_MAINLAND.fullmatch(p) for p in phones):
            raise AliyunError("isv.MOBILE_NUMBER_ILLEGAL")
        if sign not in self.sign_names:
            raise AliyunError("isv.SMS_SIGNATURE_ILLEGAL")
        template = self.templates.get(code)
        if template is None:
            raise AliyunError("isv.SMS_TEMPLATE_ILLEGAL")
        values = _template_param(params.get("TemplateParam", "{}"))
        if not set(_VARIABLE.findall(template)) <= set(values):
            raise AliyunError("isv.TEMPLATE_MISSING_PARAMETERS")
        self._check_values(values)
        text = f"【{sign}】" + _VARIABLE.sub(lambda m: values[m.group(1)], template)
        sms = FakeSms(new_biz_id(), phones, sign, code, values, params.get("OutId"), text, params)
        failing = [self._undeliverable[p] for p in phones if p in self._undeliverable]
        if failing:
            sms.status, sms.err_code = 2, failing[0]
        return sms

    def _check_values(self, values: dict[str, str]) -> None:
        """No link in a variable; no variable longer than the template allows."""
        if any(_LINK.search(v) for v in values.values()):
            raise AliyunError("isv.PARAM_NOT_SUPPORT_URL")
        limit = self.max_variable_chars
        if limit is not None and any(len(v) > limit for v in values.values()):
            raise AliyunError("isv.PARAM_LENGTH_LIMIT")


async def _push(url: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """POST a batch push; the receiver's JSON answer (``{}`` when it is not JSON, as a
    refusal's text is not) with the HTTP ``status``."""
    async with aiohttp.ClientSession() as session, session.post(url, json=items) as resp:
        try:
            answer = await resp.json(content_type=None)
        except ValueError:
            answer = None
        return (answer if isinstance(answer, dict) else {}) | {"status": resp.status}


def _int_param(params: dict[str, str], name: str, low: int, high: int | None = None) -> int:
    """A whole-number parameter within bounds, or Aliyun's isv.INVALID_PARAMETERS."""
    value = params.get(name, "")
    if not value.isdigit() or not low <= int(value) <= (high or int(value)):
        raise AliyunError("isv.INVALID_PARAMETERS", f"{name} is invalid", 200)
    return int(value)


def _signs_enough(request: web.Request, signed: list[str]) -> bool:
    """Lower-case, sorted names covering ``host`` and every ``x-acs-*`` header sent."""
    sent = {name.lower() for name in request.headers if name.lower().startswith("x-acs-")}
    required = sent | set(REQUIRED_SIGNED) | {"host"}
    return signed == sorted(set(signed)) and required <= set(signed)


def _template_param(text: str) -> dict[str, str]:
    """TemplateParam must be a JSON object of strings (Aliyun refuses numbers)."""
    try:
        values = json.loads(text)
    except ValueError:
        values = None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise AliyunError("isv.INVALID_JSON_PARAM")
    return values
