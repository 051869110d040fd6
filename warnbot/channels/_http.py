"""Plumbing shared by the group-bot channels: settings sections, groups, HTTP, errors.

Every group bot (WeCom, DingTalk, Feishu, Slack, the generic webhook) does the
same four things around its own payload: find the group named by
``message.to``, POST JSON with a timeout on one lazily created session, turn
network faults into transient ``SendError``s, and classify the provider's answer
by its error code or HTTP status. They live here once so the channel modules
hold only what differs: the URL, the signature and the payload.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Generic, Self, TypeVar

import aiohttp
import yarl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from warnbot.errors import ConfigError, SendError
from warnbot.model import Message, Receipt
from warnbot.settings import Settings

# Environment variables are lower-cased by pydantic-settings and split on "__",
# so only names of this shape survive WARNBOT_CHANNELS__<NAME>__GROUPS__<GROUP>__<KEY>.
_GROUP_NAME = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
_TRANSIENT_STATUS = frozenset({408, 425, 429})


class GroupSettings(BaseModel):
    """One chat group (or loudspeaker system) a channel can reach; ``message.to`` names it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", description="display name, e.g. 县防指值班群")


G = TypeVar("G", bound=GroupSettings)
M = TypeVar("M", bound=BaseModel)


class ChannelSettings(BaseModel, Generic[G]):
    """The ``[channels.<name>]`` section every group-bot channel shares."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(default=10.0, gt=0)
    groups: dict[str, G] = Field(default_factory=dict)

    @field_validator("groups")
    @classmethod
    def _env_safe_names(cls, groups: dict[str, G]) -> dict[str, G]:
        """A mixed-case name in the TOML would never meet its secret from the environment."""
        for name in groups:
            if _GROUP_NAME.fullmatch(name) is None:
                raise ValueError(
                    f"group name {name!r} must be lower-case letters and digits joined by single"
                    " underscores, since WARNBOT_CHANNELS__…__GROUPS__<GROUP>__… names are"
                    " lower-cased and split on '__'"
                )
        return groups


S = TypeVar("S", bound=ChannelSettings[Any])


class GroupBot(Generic[S]):
    """What every group-bot channel holds: its settings, a clock, one HTTP session.

    ``clock`` (seconds since the epoch) is injectable so tests can sign stale
    requests or fix ``sent_at``. Subclasses name their settings model and send.
    """

    name: str
    settings_model: ClassVar[type[ChannelSettings[Any]]]

    def __init__(self, settings: S, clock: Callable[[], float] = time.time) -> None:
        self.settings, self.clock = settings, clock
        self.http = JsonPoster(self.name, settings.timeout_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Build from ``[channels.<name>]``; raises ConfigError when it is invalid."""
        # settings_model is the subclass's S, which a ClassVar cannot spell.
        return cls(section(cls.settings_model, settings, cls.name))  # type: ignore[arg-type]

    async def send(self, message: Message) -> Receipt:
        """Hand ``message`` to the group named by ``message.to``; raise SendError on failure."""
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.http.aclose()


def section(model: type[M], settings: Settings, name: str) -> M:
    """Validate ``settings.channels[name]``; ConfigError lists ``channels.<name>.<key>: …``."""
    try:
        return model.model_validate(settings.channels.get(name, {}))
    except ValidationError as e:
        raise ConfigError([_problem(name, err["loc"], err["msg"]) for err in e.errors()]) from None


def _problem(name: str, loc: tuple[int | str, ...], msg: str) -> str:
    return ".".join(["channels", name, *map(str, loc)]) + f": {msg}"


def group_of(groups: Mapping[str, G], provider: str, name: str) -> G:
    """The configured group ``name``; an unknown group is permanent, no retry can add it."""
    group = groups.get(name)
    if group is None:
        raise SendError(f"{provider}: no group {name!r} is configured", retryable=False)
    return group


def cn_mobile(mention: str) -> str | None:
    """The 11-digit mainland number WeCom and DingTalk @ by, or None for a platform user id.

    The roster keeps E.164 (``+8613800000001``); the bots want ``13800000001``.
    """
    digits = mention.removeprefix("+86").removeprefix("0086")
    return digits if re.fullmatch(r"1\d{10}", digits) else None


def split_mentions(mentions: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(mainland mobiles, platform user ids) — WeCom and DingTalk take them in two lists."""
    mobiles = [m for m in map(cn_mobile, mentions) if m is not None]
    return mobiles, [m for m in mentions if cn_mobile(m) is None]


def json_bytes(payload: Mapping[str, Any]) -> bytes:
    """UTF-8 JSON with Chinese kept readable (every provider here takes it)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Reply:
    """A provider's answer, read whole; ``json`` is None when the body is not a JSON object."""

    status: int
    text: str
    retry_after: str | None = None
    json: dict[str, Any] | None = field(default=None, repr=False)

    def code(self, *names: str) -> int | None:
        """The first integer error-code field present (``errcode``, ``code``, ``StatusCode``)."""
        for name in names:
            value = (self.json or {}).get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    @property
    def ok_status(self) -> bool:
        return 200 <= self.status < 300


class JsonPoster:
    """POSTs JSON for one channel on one lazily created session, each request with a timeout.

    Network faults and timeouts become transient ``SendError``s naming only the
    host: the URLs of these bots carry their secrets in the path or query.
    """

    def __init__(self, provider: str, timeout_s: float) -> None:
        self.provider = provider
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.session: aiohttp.ClientSession | None = None

    async def post(
        self,
        url: str,
        body: bytes,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """POST ``body`` to ``url`` plus ``params`` (percent-encoded, so ``+`` survives).

        Raises a transient SendError when the provider cannot be reached in time.
        """
        try:
            return await self._post(yarl.URL(url).update_query(params or {}), body, headers or {})
        except (aiohttp.ClientError, TimeoutError) as e:
            reason = f"{self.provider}: {yarl.URL(url).host} unreachable ({type(e).__name__})"
            raise SendError(reason, retryable=True) from e

    async def _post(self, url: yarl.URL, body: bytes, headers: Mapping[str, str]) -> Reply:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json; charset=utf-8", **headers}
        async with self.session.post(url, data=body, headers=headers, timeout=self.timeout) as r:
            text = await r.text(errors="replace")
            return Reply(r.status, text, r.headers.get("Retry-After"), _json_object(text))

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """An HTTP ``Retry-After`` in seconds: delta-seconds, or an HTTP-date from ``now``.
    None when absent or unreadable (the caller's own backoff applies then)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def status_error(reply: Reply, where: str) -> SendError | None:
    """None for 2xx; 408, 425, 429 and 5xx are transient; any other status is permanent."""
    if reply.ok_status:
        return None
    wait = f" (Retry-After {reply.retry_after} s)" if reply.retry_after else ""
    detail = reply.text.strip()[:200]
    reason = f"{where}: HTTP {reply.status} {detail}{wait}".rstrip()
    return SendError(
        reason,
        retryable=transient_status(reply.status),
        code=str(reply.status),
        retry_after_s=retry_after_s(reply.retry_after),
    )


def transient_status(status: int) -> bool:
    """408, 425, 429 and 5xx: the provider may take the same request later."""
    return status in _TRANSIENT_STATUS or status >= 500


def code_error(
    reply: Reply, where: str, *, fields: tuple[str, ...], transient: frozenset[int]
) -> SendError | None:
    """Classify a JSON answer carrying an error code (0 is success).

    A code in ``transient`` (rate limits, "system busy") can be retried; other
    codes are permanent. Without a code, the HTTP status decides; a 2xx whose
    body we cannot read is transient, since the message may not have arrived.
    """
    code = reply.code(*fields)
    if code is None:
        return status_error(reply, where) or SendError(
            f"{where}: unreadable answer {reply.text[:200]!r}", retryable=True
        )
    if code == 0:
        return None
    message = (reply.json or {}).get("errmsg") or (reply.json or {}).get("msg") or ""
    retryable = code in transient or transient_status(reply.status)
    return SendError(
        f"{where}: error {code} {message}".rstrip(), retryable=retryable, code=str(code)
    )


def receipt(message: Message, error: SendError | None) -> Receipt:
    """The receipt of an accepted message (the bots return no id), or raise the refusal."""
    if error is not None:
        raise error
    return Receipt(provider_id=f"{message.to}:{message.key}")
