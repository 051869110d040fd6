"""Email over SMTP (aiosmtplib): one connection per message, to ``message.to``.

The subject is the body's first line, cut to 60 characters, so a mail list
reads like the SMS it mirrors; the body is UTF-8 text (Chinese intact). The
``Message-ID`` is derived from ``message.key``, so a retry of the same outbox
message carries the same id and a mail system or person can see it is one
message, not two. ``Auto-Submitted: auto-generated`` (RFC 3834) keeps
out-of-office robots from answering a warning.

Errors (RFC 5321 §4.2.1): a 4xx reply (451 local error, 452 no storage, 421
service closing) is transient; a 5xx reply (550 no such mailbox, 553, 535 bad
credentials) is permanent. A refused, dropped or timed-out connection is
transient; anything else the client refuses to do (the server lacks STARTTLS
or AUTH) is a configuration fault a retry cannot mend: permanent.

One connection per message keeps failures apart and needs no pool; the
dispatcher's concurrency bounds how many are open at once.
"""

from __future__ import annotations

import hashlib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from warnbot.errors import ConfigError, SendError
from warnbot.model import EMAIL_ADDRESS, Message, Receipt
from warnbot.settings import Settings

SUBJECT_MAX_CHARS = 60
# The client gave up on the connection itself; the server never judged the message.
_CONNECTION = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    OSError,
    TimeoutError,
)


class EmailSettings(BaseModel):
    """``[channels.email]``; the password comes from the environment:
    ``WARNBOT_CHANNELS__EMAIL__PASSWORD``."""

    model_config = ConfigDict(extra="forbid")

    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    # None: STARTTLS unless use_tls (implicit TLS, port 465). Never "if offered":
    # a downgrade would hand the password to whoever sits on the path.
    starttls: bool | None = None
    use_tls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = Field(pattern=EMAIL_ADDRESS.pattern)
    from_name: str = ""  # shown to recipients, e.g. 示例县三防办
    timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> EmailSettings:
        if self.use_tls and self.starttls:
            raise ValueError("starttls and use_tls exclude each other (587 STARTTLS, 465 TLS)")
        return self

    @property
    def start_tls(self) -> bool:
        return not self.use_tls if self.starttls is None else self.starttls


class SmtpEmail:
    """Sends ``message.body`` to the address ``message.to``."""

    name = "email"

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpEmail:
        """The channel ``[channels.email]`` describes; ConfigError names each bad key."""
        try:
            return cls(EmailSettings.model_validate(settings.channels.get("email", {})))
        except ValidationError as e:
            raise ConfigError(
                [f"channels.email.{'.'.join(map(str, r['loc']))}: {r['msg']}" for r in e.errors()]
            ) from None

    async def send(self, message: Message) -> Receipt:
        if not EMAIL_ADDRESS.fullmatch(message.to):
            raise SendError(f"email: {message.to!r} is not an address", retryable=False)
        mail = compose(message, self.settings)
        try:
            await aiosmtplib.send(mail, **self._connection())
        except aiosmtplib.SMTPException as e:
            raise classify(e) from e
        except (OSError, TimeoutError) as e:
            raise SendError(f"email: {type(e).__name__} {e}", retryable=True) from e
        return Receipt(provider_id=str(mail["Message-ID"]))

    def _connection(self) -> dict[str, Any]:
        s = self.settings
        return {
            "hostname": s.host,
            "port": s.port,
            "use_tls": s.use_tls,
            "start_tls": s.start_tls,
            "username": s.username,
            "password": s.password.get_secret_value() if s.password else None,
            "timeout": s.timeout_s,
        }

    async def aclose(self) -> None:
        """Nothing to release: each message has its own connection."""


def compose(message: Message, settings: EmailSettings) -> EmailMessage:
    """The mail for ``message``: UTF-8 text, a subject from its first line, a stable id."""
    mail = EmailMessage()
    mail["From"] = Address(settings.from_name, addr_spec=settings.from_address)
    mail["To"] = message.to
    mail["Subject"] = subject(message.body)
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = message_id(message.key, settings.from_address)
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.body, charset="utf-8")
    return mail


def subject(body: str) -> str:
    """The first non-empty line, at most 60 characters; a bare fallback for an empty body."""
    first = next((line.strip() for line in body.splitlines() if line.strip()), "")
    return first[:SUBJECT_MAX_CHARS] or "warnbot"


def message_id(key: str, from_address: str) -> str:
    """``<hash-of-key@sender-domain>``: the same outbox message always gets the same id."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<warnbot.{digest}@{from_address.rpartition('@')[2]}>"


def classify(e: aiosmtplib.SMTPException) -> SendError:
    """5xx permanent, other replies transient; a lost connection transient; the rest permanent."""
    if isinstance(e, aiosmtplib.SMTPRecipientsRefused) and e.recipients:
        e = e.recipients[0]
    if isinstance(e, aiosmtplib.SMTPResponseException):
        reason = f"email: SMTP {e.code} {e.message}".strip()
        # 5xx is the server's final word; 4xx and malformed replies may pass.
        return SendError(reason, retryable=not 500 <= e.code < 600, code=str(e.code))
    retryable = isinstance(e, _CONNECTION)
    return SendError(f"email: {type(e).__name__} {e.message}", retryable=retryable)
