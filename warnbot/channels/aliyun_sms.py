"""Aliyun SMS (阿里云短信服务, Dysmsapi 2017-05-25) for mainland numbers, through the
official SDK ``alibabacloud-dysmsapi20170525``.

Twilio cannot receive replies from +86 numbers; Aliyun can, and pushes them to
``POST /hooks/aliyun/sms/{secret}``, and its delivery receipts to
``POST /hooks/aliyun/report/{secret}`` (:mod:`warnbot.web.aliyun_hooks`). Mainland
SMS must use an approved signature (短信签名) and template (短信模板): the
rendered warning goes into one template variable, ``template_variable``
(``${content}`` by default); ``template_fixed`` fills the office's other variables.

SendSms has no validity period (Twilio's ``ValidityPeriod``): a message Aliyun
cannot deliver at once waits as long as Aliyun keeps it, and the ladder's own
reminders and calls go on meanwhile.

``endpoint`` and ``protocol`` replace the SDK's ``https://dysmsapi.aliyuncs.com``
so a proxy, or the local fake of the tests, can stand in; plain ``http`` is
accepted only towards a loopback address, so a warning never crosses a
network in clear text.

Settings (``[channels.aliyun]``; the secrets only from the environment)::

    [channels.aliyun]
    access_key_id = "LTAI5t..."
    sign_name = "某某县应急管理局"
    template_code = "SMS_123456789"
    template_variable = "content"
    inbound_allow = ["100.100.0.0/16"]

    WARNBOT_CHANNELS__ALIYUN__ACCESS_KEY_SECRET=...
    WARNBOT_CHANNELS__ALIYUN__INBOUND_SECRET=...   # ≥ 32 random characters
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Self
from urllib.parse import urlsplit

import aiohttp
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from Tea.exceptions import TeaException

from warnbot.errors import ConfigError, SendError
from warnbot.model import Message, Receipt
from warnbot.settings import Settings

NAME = "aliyun"
MIN_INBOUND_SECRET = 32
_MAINLAND = re.compile(r"(?:\+86|0086|86)?(1[3-9]\d{9})")
_ENDPOINT = r"^([\w.-]+|\[[\da-fA-F:]+\])(:\d{1,5})?$"  # host[:port], no scheme, no path

# Codes a later attempt can get past (sources: help.aliyun.com/document_detail/101346,
# the gateway's Throttling.* codes). Everything else is permanent for this message:
# an illegal number, template or signature (isv.MOBILE_NUMBER_ILLEGAL,
# isv.SMS_TEMPLATE_ILLEGAL, isv.TEMPLATE_MISSING_PARAMETERS, isv.SMS_SIGNATURE_ILLEGAL …)
# fails the same way every time, and an empty or stopped account
# (isv.AMOUNT_NOT_ENOUGH, isv.OUT_OF_SERVICE) needs a person to top it up — retrying
# for the dispatcher's few minutes of backoff would only delay the failover and the
# escalation that a failed message triggers.
RETRYABLE_CODES = frozenset(
    {"isv.BUSINESS_LIMIT_CONTROL", "ServiceUnavailable", "InternalError", "UnknownError"}
)
RETRYABLE_PREFIXES = ("isp.", "Throttling")
PERMANENT_ISP_CODES = frozenset({"isp.RAM_PERMISSION_DENY"})  # a RAM policy, not a fault
BEIJING = timezone(timedelta(hours=8))  # QuerySendDetails' SendDate is a Beijing day
QUERY_PAGE = 50  # the most QuerySendDetails returns at once
MAX_QUERY_PAGES = 20  # 1,000 messages to one number in a day: far past any warning
# QuerySendDetails' SendStatus: 1 awaiting the handset's report, 2 failed, 3 delivered
SEND_STATUS = {1: "sent", 2: "failed", 3: "delivered"}
RECONCILED = "out:"  # the provider id of a message found by reconciliation (no BizId)


class AliyunInbound(BaseModel):
    """What the SmsUp push endpoint needs; read on its own so the endpoint works
    whatever the sending half of the settings says."""

    model_config = ConfigDict(extra="ignore")

    # The push carries no signature: the path holds this secret instead.
    inbound_secret: SecretStr | None = None
    # Source addresses allowed to push; empty allows any. Behind a reverse proxy
    # the server sees the proxy's address, so list the proxy there (or filter at it).
    inbound_allow: list[IPvAnyNetwork] = Field(default_factory=list)

    @field_validator("inbound_secret")
    @classmethod
    def _long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < MIN_INBOUND_SECRET:
            raise ValueError(f"must be at least {MIN_INBOUND_SECRET} random characters")
        return v

    def allows(self, remote: str | None) -> bool:
        """True when ``remote`` (the peer address) may push."""
        if not self.inbound_allow:
            return True
        try:
            address = ipaddress.ip_address(remote or "")
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped  # an IPv4 peer on a dual-stack socket
        return any(address in network for network in self.inbound_allow)


class AliyunSmsSettings(AliyunInbound):
    """``[channels.aliyun]``: account, endpoint, signature and template."""

    model_config = ConfigDict(extra="forbid")

    access_key_id: str = Field(min_length=1)
    access_key_secret: SecretStr
    # host[:port] only: the SDK would honour a scheme written here over ``protocol``.
    endpoint: str = Field(default="dysmsapi.aliyuncs.com", pattern=_ENDPOINT)
    protocol: Literal["https", "http"] = "https"
    sign_name: str = Field(min_length=1)
    template_code: str = Field(min_length=1)
    template_variable: str = Field(default="content", min_length=1)
    template_fixed: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _clear_text_only_locally(self) -> Self:
        if self.protocol == "http" and not _is_loopback(self.endpoint):
            raise ValueError("protocol http is only for a local fake (a loopback endpoint)")
        return self

    @classmethod
    def of(cls, settings: Settings) -> AliyunSmsSettings:
        """Validate ``settings.channels["aliyun"]``; ConfigError names each bad key."""
        try:
            return cls.model_validate(settings.channels.get(NAME, {}))
        except ValidationError as e:
            raise ConfigError([_problem(err) for err in e.errors()]) from None


def _problem(err: Any) -> str:
    where = ".".join(str(p) for p in ("channels", NAME, *err["loc"]))
    return f"{where}: {err['msg']}"


def _is_loopback(endpoint: str) -> bool:
    host = urlsplit(f"//{endpoint}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mainland_number(phone: str) -> str:
    """The 11-digit mainland mobile number Aliyun expects, from ``+8613800000000``.

    Anything else is a permanent SendError: this channel sends domestic SMS only
    (international SMS needs other templates and another price list).
    """
    match = _MAINLAND.fullmatch(re.sub(r"[\s-]", "", phone))
    if match is None:
        raise SendError(
            "Aliyun SMS: not a mainland mobile number", retryable=False, code="not_mainland"
        )
    return match.group(1)


class AliyunSms:
    """Sends SMS with ``client.send_sms_with_options_async`` (SendSms)."""

    name = NAME

    def __init__(self, settings: AliyunSmsSettings) -> None:
        # The SDK takes about a second to import: only a configured channel pays for it,
        # not every process that reads these settings (the SmsUp endpoint, check-config).
        from alibabacloud_dysmsapi20170525.client import Client

        self.settings = settings
        self.client = Client(_config(settings))

    @classmethod
    def from_settings(cls, settings: Settings) -> AliyunSms:
        """The channel ``[channels.aliyun]`` describes; ConfigError names each bad key."""
        return cls(AliyunSmsSettings.of(settings))

    async def send(self, message: Message) -> Receipt:
        from darabonba.runtime import RuntimeOptions

        request = self.request(message)
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                response = await self.client.send_sms_with_options_async(request, RuntimeOptions())
        except TeaException as e:
            raise classify_exception(e) from e
        except (OSError, TimeoutError) as e:
            raise unreachable(e) from e
        return receipt(response.body)

    async def reconcile(self, message: Message, since: datetime) -> Receipt | None:
        """Did Aliyun already take this message (before a crash)? QuerySendDetails lists
        the number's messages of one day (Beijing time); the one whose ``OutId`` is the
        message key is it. Each day from ``since`` to today is asked, a page at a time."""
        phone = mainland_number(message.to)
        for day in _days(since, datetime.now(BEIJING)):
            found = await self._find(phone, day, message.key)
            if found is not None:
                return found
        return None

    async def _find(self, phone: str, day: str, out_id: str) -> Receipt | None:
        from alibabacloud_dysmsapi20170525.models import QuerySendDetailsRequest
        from darabonba.runtime import RuntimeOptions

        for page in range(1, MAX_QUERY_PAGES + 1):
            request = QuerySendDetailsRequest(
                phone_number=phone, send_date=day, page_size=QUERY_PAGE, current_page=page
            )
            try:
                async with asyncio.timeout(self.settings.timeout_s):
                    response = await self.client.query_send_details_with_options_async(
                        request, RuntimeOptions()
                    )
            except TeaException as e:
                raise classify_exception(e) from e
            except (OSError, TimeoutError) as e:
                raise unreachable(e) from e
            body = response.body
            if body is None or body.code != "OK":
                raise classify(getattr(body, "code", "") or "", getattr(body, "message", ""), 200)
            dtos = (
                body.sms_send_detail_dtos.sms_send_detail_dto if body.sms_send_detail_dtos else []
            )
            for dto in dtos or []:
                if dto.out_id == out_id:
                    status = SEND_STATUS.get(dto.send_status, "sent")
                    return Receipt(provider_id=reconciled_id(out_id), status=status)
            if page * QUERY_PAGE >= int(body.total_count or 0):
                return None
        return None

    def request(self, message: Message) -> Any:
        """The SendSms parameters; ``OutId`` is the message key, so the delivery
        report (SmsReport ``out_id``) and a later reconciliation can find it."""
        from alibabacloud_dysmsapi20170525.models import SendSmsRequest

        params = {**self.settings.template_fixed, self.settings.template_variable: message.body}
        return SendSmsRequest(
            phone_numbers=mainland_number(message.to),
            sign_name=self.settings.sign_name,
            template_code=self.settings.template_code,
            template_param=json.dumps(params, ensure_ascii=False),
            out_id=message.key,
        )

    async def aclose(self) -> None:
        """Nothing to release: the SDK opens a session per call."""
        return None


def _days(since: datetime, now: datetime) -> list[str]:
    """Each Beijing day from ``since`` to ``now``, as SendDate's ``yyyyMMdd``; at most
    the 30 Aliyun keeps."""
    first = since.astimezone(BEIJING).date()
    last = now.astimezone(BEIJING).date()
    count = min((last - first).days, 29) + 1
    return [(last - timedelta(days=n)).strftime("%Y%m%d") for n in range(count)][::-1]


def _config(settings: AliyunSmsSettings) -> Any:
    """SDK config; its own retries stay off (the outbox retries) and its timeouts
    (milliseconds) match ours."""
    from alibabacloud_tea_openapi.utils_models import Config

    timeout_ms = int(settings.timeout_s * 1000)
    return Config(
        access_key_id=settings.access_key_id,
        access_key_secret=settings.access_key_secret.get_secret_value(),
        endpoint=settings.endpoint,
        protocol=settings.protocol,
        read_timeout=timeout_ms,
        connect_timeout=timeout_ms,
    )


def receipt(body: Any) -> Receipt:
    """``Code: OK`` → the BizId; any other code (sent with HTTP 200) → SendError."""
    if body is None:
        raise SendError("Aliyun answered without a body", retryable=True)
    if body.code != "OK":
        raise classify(body.code or "", body.message or "", 200)
    return Receipt(provider_id=body.biz_id or "", status="accepted")


def classify_exception(e: TeaException) -> SendError:
    """The SDK's errors: HTTP 4xx/5xx answers carry a code; a failure to reach
    Aliyun (wrapped as UnretryableException, no code) is transient."""
    status = getattr(e, "status_code", None)
    code = (
        "" if e.code in (None, "None") else str(e.code)
    )  # the SDK writes a missing code as "None"
    if not code and status is None:
        return unreachable(e)
    return classify(code, str(e.message or ""), int(status or 0))


def unreachable(e: BaseException) -> SendError:
    """Transient, and in doubt unless the connection was never made: a timeout or a reset
    may come after Aliyun took the message, so the dispatcher asks QuerySendDetails
    before sending again. The SDK wraps the network error (``UnretryableException`` →
    ``RetryError`` → the aiohttp error as its context), so the chain is searched."""
    chain = [x for x in _causes(e) if not isinstance(x, asyncio.CancelledError)]
    never_sent = any(isinstance(x, _NEVER_SENT) for x in chain)
    return SendError(
        f"Aliyun unreachable: {type(chain[-1]).__name__}", retryable=True, in_doubt=not never_sent
    )


# The request never left: refused, no route, or no connection made in time.
_NEVER_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, ConnectionRefusedError)


def _causes(e: BaseException) -> Iterator[BaseException]:
    """``e`` and what it wraps, outermost first (a few links at most)."""
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        inner = getattr(current, "inner_exception", None)
        current = (
            inner
            if isinstance(inner, BaseException)
            else (current.__cause__ or current.__context__)
        )


def classify(code: str, message: str, status: int) -> SendError:
    """Transient (rate limits, throttling, ``isp.*`` system errors, 429/5xx) or permanent."""
    return SendError(
        f"Aliyun {status} {code}: {message}",
        retryable=retryable(code, status),
        code=code or None,
    )


def retryable(code: str, status: int) -> bool:
    """Whether trying the same message again later can succeed."""
    if code in PERMANENT_ISP_CODES:
        return False
    return (
        status == 429
        or status >= 500
        or code in RETRYABLE_CODES
        or code.startswith(RETRYABLE_PREFIXES)
    )


def reconciled_id(out_id: str) -> str:
    """The provider id a reconciled message is recorded under: QuerySendDetails gives no
    BizId, so one derived from the ``OutId`` (our key) stands in, and a delivery receipt,
    which carries both, exchanges it for the BizId (``DeliveryStore.record_delivery``)."""
    return RECONCILED + hashlib.sha256(out_id.encode()).hexdigest()[:32]
