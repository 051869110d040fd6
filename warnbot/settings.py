"""Settings: one TOML file plus ``WARNBOT_*`` environment overrides.

Precedence, highest first: environment (``WARNBOT_TWILIO__AUTH_TOKEN``), the
secrets file (a dotenv file of ``WARNBOT_*`` lines named by
``WARNBOT_SECRETS_FILE``), then the TOML file (``--config`` or
``WARNBOT_CONFIG``). Secrets are refused in the TOML file, because config files
get committed and mailed around; they are ``SecretStr`` so they never print.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from warnbot.errors import ConfigError
from warnbot.model import Level, LevelPolicy, Tier, TierPolicy
from warnbot.rosters.phones import is_region
from warnbot.rules import CapRule as CapRule  # re-exported: rules moved to warnbot.rules
from warnbot.rules import Rule

# Keys that hold secrets, wherever they appear (``[twilio] auth_token``,
# ``[channels.dingtalk] secret``): refused in the TOML file.
SECRET_NAMES = frozenset(
    {
        "auth_token",
        "link_secret",
        "secret",
        "token",
        "password",
        "access_key_secret",
        "bot_token",
        "api_key",
        "signing_secret",
        "webhook_key",
        "access_token",
        "webhook_url",
        "hook_token",
        "webhook_secret",
        "inbound_secret",
    }
)
_ACCOUNT_SID = r"^AC[0-9a-fA-F]{32}$"


class TwilioSettings(BaseModel):
    """Twilio account; ``api_base_url`` lets a proxy or a local fake stand in."""

    account_sid: str = Field(default="", pattern=rf"{_ACCOUNT_SID}|^$")
    auth_token: SecretStr | None = None
    from_number: str = ""
    api_base_url: str = "https://api.twilio.com"
    timeout_s: float = Field(default=10.0, gt=0)
    # A message still queued at Twilio after this long fails instead of arriving late
    # (public tips, notices); asks and escalations of an incident at one of
    # urgent_levels get urgent_validity_s (see warnbot/validity.py).
    validity_period_s: int | None = Field(default=1800, ge=1, le=36000)
    urgent_validity_s: int | None = Field(default=600, ge=1, le=36000)
    urgent_levels: list[str] = Field(default_factory=lambda: ["Ⅰ", "Ⅱ"])
    # Ask Twilio for delivery reports at {web.public_url}/hooks/twilio/status.
    status_callbacks: bool = True

    @field_validator("urgent_levels")
    @classmethod
    def _known_levels(cls, v: list[str]) -> list[str]:
        for name in v:
            Level.parse(name)
        return v

    def urgent_level_set(self) -> frozenset[Level]:
        return frozenset(Level.parse(name) for name in self.urgent_levels)


class WebSettings(BaseModel):
    """The HTTP server: webhooks, ack links, health."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The address providers and phones use to reach us: Twilio signs this URL,
    # and ack links are built on it, so it must be what the outside world sees.
    public_url: str = "http://127.0.0.1:8080"
    link_secret: SecretStr | None = None

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, v: str) -> str:
        return v.rstrip("/")


class ConsoleSettings(BaseModel):
    """The duty-officer console: sign-in lock-out, session length, default language."""

    language: Literal["zh", "en"] = "zh"
    timezone: str = "Asia/Shanghai"  # times on the console's pages
    session_ttl_s: float = Field(default=12 * 3600.0, gt=0)
    # This many wrong passwords in a row lock the account for lock_s.
    max_failures: int = Field(default=5, ge=1)
    lock_s: float = Field(default=900.0, gt=0)
    # How often the live ack board looks for changes made by other processes.
    board_poll_s: float = Field(default=2.0, gt=0)


FailoverEntry = Literal["sms", "voice", "telegram", "wecom", "dingtalk", "feishu", "slack", "email"]
DEFAULT_FAILOVER: tuple[FailoverEntry, ...] = (
    "sms",
    "voice",
    "telegram",
    "wecom",
    "dingtalk",
    "feishu",
    "slack",
    "email",
)
FeedFormat = Literal["cap", "atom", "geojson", "usgs", "ea", "json"]


class FeedSettings(BaseModel):
    """One feed. ``url`` says how it arrives: ``file:PATH`` or ``http(s)://`` is
    polled, ``mqtt://HOST:PORT/TOPIC`` is subscribed to, ``push:`` only accepts
    ``POST /api/feeds/{name}`` from an upstream that pushes."""

    name: str = Field(min_length=1, pattern=r"^[^/]+$")
    url: str = Field(pattern=r"^(file:|https?://|mqtts?://|push:)")
    format: FeedFormat | None = Field(default=None, description="None: sniff the content")
    interval_s: float = Field(default=60.0, gt=0)
    jitter_s: float | None = Field(default=None, ge=0, description="default: 10% of interval")
    timeout_s: float = Field(default=20.0, gt=0)
    max_bytes: int = Field(default=5_000_000, gt=0)
    max_backoff_s: float = Field(default=3600.0, gt=0)
    # A feed with no good data for this long raises an alert to the duty officer:
    # a dead feed must never look like a quiet sky.
    silent_after_s: float | None = Field(default=None, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)
    # JSON readings (format "json", MQTT, pushed readings): where each field is.
    mapping: dict[str, Any] | None = None
    # Push endpoints authenticate with a bearer token; only its SHA-256 is configured,
    # so the config file holds no secret: `printf %s TOKEN | sha256sum`.
    push_token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @property
    def transport(self) -> str:
        """poll, mqtt or push."""
        if self.url.startswith(("mqtt://", "mqtts://")):
            return "mqtt"
        return "push" if self.url.startswith("push:") else "poll"

    @property
    def jitter(self) -> float:
        return self.interval_s * 0.1 if self.jitter_s is None else self.jitter_s


class RateLimit(BaseModel):
    """A provider's limit (``[rate_limits.<name>]``, one bucket shared by every process):
    never more than ``rate_per_s`` (or ``rate_per_min``) in any one second, no burst.
    ``channels``: the channels drawing on it — by default the channel named like the
    limit; Twilio SMS and voice share one account: ``channels = ["twilio", "voice"]``.
    ``per_sender``: one bucket per destination instead (each DingTalk/WeCom robot or
    group: 20 a minute each). A message draws on every limit naming its channel.
    ``per_segment``: SMS providers meter segments (a 2-part Chinese SMS costs 2).
    ``guard_s``: how late a send may leave, or how much slower on the wire than the
    one before, and still not crowd a second (the rate achieved is about
    ``rate_per_s / (1 + guard_s)``)."""

    model_config = ConfigDict(extra="forbid")

    rate_per_s: float = Field(gt=0)
    per_segment: bool = False
    price_per_segment: float = Field(default=0.0, ge=0)
    guard_s: float = Field(default=0.015, ge=0, le=1)
    channels: list[str] = Field(default_factory=list)
    per_sender: bool = False

    @model_validator(mode="before")
    @classmethod
    def _per_minute(cls, data: Any) -> Any:
        """``rate_per_min = 20`` is ``rate_per_s = 1/3``; one of the two, not both."""
        if isinstance(data, dict) and "rate_per_min" in data:
            data = dict(data)
            if "rate_per_s" in data:
                raise ValueError("give rate_per_s or rate_per_min, not both")
            per_min = data.pop("rate_per_min")
            if not isinstance(per_min, int | float) or isinstance(per_min, bool) or per_min <= 0:
                raise ValueError("rate_per_min must be a number above 0")
            data["rate_per_s"] = per_min / 60
        return data

    @property
    def effective_per_s(self) -> float:
        """The rate slots are actually given at: spaced ``(1 + guard_s) / rate_per_s``."""
        return self.rate_per_s / (1 + self.guard_s)


class GroupRoute(BaseModel):
    """A chat group that hears about incidents: one message per tier, @mentioning that
    tier's persons (each still confirms for themself, by their own channel)."""

    channel: str = Field(min_length=1)
    group: str = Field(min_length=1)
    tiers: list[Tier] = Field(min_length=1)
    region_code: str | None = Field(default=None, pattern=r"^\d{6}(\d{3}){0,2}$")


class CapSettings(BaseModel):
    """Who warnbot is when it publishes CAP (GB/T 35965.1 identifiers name the issuer)."""

    sender: str = Field(pattern=r"^[^\s,<&]+$")
    issuer_region: str = Field(pattern=r"^\d{6}$")
    issuer_org: str = Field(default="000", pattern=r"^\d{3}$")
    sender_name: str = ""
    language: str = "zh-CN"
    contact: str = ""
    web: str = ""


class DownstreamSettings(BaseModel):
    """A system that takes warnbot's CAP: 应急广播, screens, a cell-broadcast gateway,
    the next office up. ``token_env`` names the environment variable holding its
    bearer token, if it wants one (secrets stay out of this file)."""

    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    token_env: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)


class TierPolicySettings(BaseModel):
    """One tier's 叫应 ladder (``[policy."Ⅰ".village]``); see ``model.TierPolicy``.

    Fields are declared in ladder order, so each check sees the steps before it:
    a step configured earlier than the one it follows is an error, not a surprise.
    """

    model_config = ConfigDict(extra="forbid")

    ack_window_s: float = Field(gt=0)
    repeat_count: int = Field(default=1, ge=0)
    repeat_interval_s: float = Field(default=300.0, gt=0)
    voice_after_s: float | None = Field(default=None, gt=0)
    voice_count: int = Field(default=1, ge=1)
    superior_after_s: float | None = Field(default=None, gt=0)
    duty_officer_after_s: float | None = Field(default=None, gt=0)
    unreachable_after_s: float | None = Field(default=None, gt=0)
    muster_s: float | None = Field(default=None, gt=0)
    muster_roles: tuple[str, ...] = ()

    @field_validator("voice_after_s", "superior_after_s", "duty_officer_after_s")
    @classmethod
    def _after_the_window(cls, v: float | None, info: ValidationInfo) -> float | None:
        return _not_before(v, info, ("ack_window_s", "voice_after_s", "superior_after_s"))

    @field_validator("duty_officer_after_s", "unreachable_after_s")
    @classmethod
    def _after_the_superior(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is not None and info.data.get("superior_after_s") is None:
            told = _default_superior_s(info.data)
            if told is not None and v < told:
                raise ValueError(
                    f"must not come before the superior is told ({told:g} s: ack_window_s + "
                    "repeat_count × repeat_interval_s, or the call if later; set "
                    "superior_after_s to tell earlier)"
                )
        return v

    @field_validator("unreachable_after_s")
    @classmethod
    def _last(cls, v: float | None, info: ValidationInfo) -> float | None:
        return _not_before(
            v, info, ("ack_window_s", "voice_after_s", "superior_after_s", "duty_officer_after_s")
        )


def _not_before(v: float | None, info: ValidationInfo, earlier: tuple[str, ...]) -> float | None:
    """``v`` must not precede any step configured before it in ladder order."""
    for name in earlier:
        if name == info.field_name:
            break
        before = info.data.get(name)
        if v is not None and before is not None and v < before:
            raise ValueError(f"must not come before {name} ({before:g} s)")
    return v


def _default_superior_s(data: dict[str, Any]) -> float | None:
    try:
        reminded = float(data["ack_window_s"]) + int(data["repeat_count"]) * float(
            data["repeat_interval_s"]
        )
        return max(reminded, float(data.get("voice_after_s") or 0.0))
    except KeyError:  # one of them failed its own check, which is reported already
        return None


class Settings(BaseSettings):
    """Everything warnbot reads at start; see ``config/warnbot.toml``."""

    model_config = SettingsConfigDict(
        env_prefix="WARNBOT_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: str = "sqlite+aiosqlite:///var/warnbot.db"
    language: str = "zh"
    templates_dir: Path | None = None
    roster: Path | None = None
    # Numbers written without a country code are read in this region (phonenumbers' code).
    phone_region: str = Field(default="CN", pattern=r"^[A-Z]{2}$")
    rota: Path | None = None  # the duty rota 值班表: CSV/XLSX, or iCalendar (.ics)
    timezone: str = "Asia/Shanghai"  # the zone of times written in rota files
    regions: Path | None = None  # the region tree (TOML or YAML): codes, names, outlines
    # The public audience (提示短信, `warnbot audience import --name`) told when a real
    # incident opens; never asked to confirm, never reached by a drill.
    tips_audience: str | None = None
    # "aliyun" for mainland numbers (replies come back by its SmsUp push), "twilio",
    # or "console" to print instead of sending.
    sms_channel: Literal["twilio", "aliyun", "console"] = "console"
    log_format: Literal["auto", "json", "console"] = "auto"
    escalation_tick_s: float = Field(default=15.0, gt=0)
    outbox_tick_s: float = Field(default=1.0, gt=0)
    feed_watch_s: float = Field(default=30.0, gt=0)
    # the scheduler lease: a dead holder is replaced within this many seconds
    lease_s: float = Field(default=15.0, ge=1)
    # A gauge's latest reading still counts this long after it was taken (gauges
    # report every 5–60 min); older readings are no evidence of the present.
    reading_max_age_s: float = Field(default=6 * 3600.0, gt=0)
    twilio: TwilioSettings = TwilioSettings()
    web: WebSettings = WebSettings()
    console: ConsoleSettings = ConsoleSettings()
    feeds: list[FeedSettings] = Field(default_factory=list)
    cap: CapSettings | None = None
    # Per channel (provider account and sender), shared by every process on the database:
    # [rate_limits.twilio] rate_per_s = 1, per_segment = true
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)
    # How long a worker's claim on an outbox row lasts: a row still "sending" after it is
    # in doubt (its worker may have died mid-send) and is reconciled by another worker.
    # Slots are booked at most half of it ahead, so it must outlast a send and its wait.
    claim_lease_s: float = Field(default=60.0, ge=5, le=3600)
    # With a rate limit, a public tip blast (lane 1) books only this many seconds of slots
    # at a time: an ask or escalation queued mid-blast waits about this long, not for it.
    tips_ahead_s: float = Field(default=0.5, gt=0, le=30)
    # The order a person's addresses are tried in when one fails for good or runs out
    # of retries (warnbot/failover.py): "sms" is each phone on sms_channel, "voice" each
    # phone called (asks only), then chat ids — telegram writes to the person, the group
    # bots in the person's [[groups]] group with an @mention. Channels not configured
    # are passed over.
    failover_order: list[FailoverEntry] = Field(default_factory=lambda: list(DEFAULT_FAILOVER))
    # Per-provider settings, validated by each channel's own model (channels/<name>.py);
    # secrets arrive from the environment: WARNBOT_CHANNELS__DINGTALK__SECRET.
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    groups: list[GroupRoute] = Field(default_factory=list)
    downstream: list[DownstreamSettings] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    policy: dict[str, dict[Tier, TierPolicySettings]] = Field(default_factory=dict)
    # Levels that call for transfer (转移): each ask carries the person's 转移清单 from
    # ``transfer_lists`` (CSV/YAML: 责任人编号, 户主, 人数, 路线, 安置点 …).
    transfer_levels: list[str] = Field(default_factory=list)
    transfer_lists: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML arrives as init kwargs; the environment must win over it.
        return env_settings, dotenv_settings, init_settings

    @field_validator("phone_region")
    @classmethod
    def _known_phone_region(cls, v: str) -> str:
        """A region ``phonenumbers`` knows, so numbers can be read in it (not "ZZ")."""
        if not is_region(v):
            raise ValueError(
                f"unknown phone region {v!r}: use a region code phonenumbers knows, e.g. CN, HK"
            )
        return v

    @field_validator("policy", "transfer_levels")
    @classmethod
    def _levels_are_known(cls, v: Any) -> Any:
        for name in v:
            Level.parse(name)
        return v

    def limit_for(self, channel: str) -> RateLimit | None:
        """The limit that paces ``channel`` as a whole (its account): the slowest limit
        naming it that is not per sender, for drain estimates."""
        shared = [
            limit
            for name, limit in self.rate_limits.items()
            if channel in (limit.channels or [name]) and not limit.per_sender
        ]
        return min(shared, key=lambda limit: limit.rate_per_s, default=None)

    def level_policy(self, level: Level) -> LevelPolicy:
        """The policy to freeze onto a new incident of ``level``."""
        for name, tiers in self.policy.items():
            if Level.parse(name) == level:
                tier_policies = {t: TierPolicy(**p.model_dump()) for t, p in tiers.items()}
                return LevelPolicy(tier_policies, transfer=self._transfers(level))
        return LevelPolicy({}, transfer=self._transfers(level))

    def _transfers(self, level: Level) -> bool:
        return any(Level.parse(name) == level for name in self.transfer_levels)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read ``path`` (or ``$WARNBOT_CONFIG``), apply the environment, validate.

    Raises ConfigError listing every problem as ``FILE: dotted.key: message``.
    """
    path = path or _env_path("WARNBOT_CONFIG")
    data = _read_toml(path) if path else {}
    label = str(path) if path else "<environment>"
    problems = [f"{label}: {'.'.join(k)}: {_SECRET_MSG}" for k in _secrets_in(data)]
    data.update(overrides)
    try:
        settings = Settings(_env_file=_env_path("WARNBOT_SECRETS_FILE"), **data)
    except ValidationError as e:
        problems += [f"{label}: {_loc(err['loc'])}: {err['msg']}" for err in e.errors()]
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return _resolve_paths(settings, path.parent if path else Path.cwd())


_SECRET_MSG = "secrets are not read from the config file; set WARNBOT_* or the secrets file"


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: {e}"]) from None


def _secrets_in(data: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Dotted paths of secret-named keys anywhere in the TOML data."""
    if isinstance(data, list):
        return [p for i, item in enumerate(data) for p in _secrets_in(item, (*path, str(i)))]
    if not isinstance(data, dict):
        return []
    found = [(*path, k) for k in sorted(data) if k in SECRET_NAMES]
    return found + [p for k in sorted(data) for p in _secrets_in(data[k], (*path, k))]


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    """Relative paths in a config file are relative to that file, not to the cwd."""
    updates: dict[str, Any] = {}
    for name in ("roster", "templates_dir", "regions", "rota", "transfer_lists"):
        value = getattr(settings, name)
        if value is not None and not value.is_absolute():
            updates[name] = base / value
    feeds = [_resolve_feed(f, base) for f in settings.feeds]
    return settings.model_copy(update={**updates, "feeds": feeds})


def _resolve_feed(feed: FeedSettings, base: Path) -> FeedSettings:
    if feed.url.startswith("file:") and not Path(feed.url[5:]).is_absolute():
        return feed.model_copy(update={"url": f"file:{base / feed.url[5:]}"})
    return feed
