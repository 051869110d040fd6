"""Generic signed JSON webhook for broadcast systems: 村村响, 应急广播 loudspeakers, screens.

POST ``{"key", "incident_id", "text", "mentions", "sent_at"}`` to the group's
``url``. With a ``secret``, the request carries ``X-Warnbot-Signature:
sha256=<hex HMAC-SHA256 of the raw body>`` and ``X-Warnbot-Timestamp: <unix s>``;
``sent_at`` inside the signed body is what a receiver checks for freshness.
``key`` is the message's idempotency key: a receiver that sees it twice (after a
retry) should play the warning once. 2xx is accepted; 408, 425, 429 and 5xx are
transient; any other status is permanent.

Settings (secrets only from the environment)::

    [channels.webhook.groups.town_loudspeakers]
    name = "镇应急广播"
    url = "https://broadcast.example.cn/api/warnings"
    # WARNBOT_CHANNELS__WEBHOOK__GROUPS__TOWN_LOUDSPEAKERS__SECRET=…
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, SecretStr

from warnbot.channels._http import (
    ChannelSettings,
    GroupBot,
    GroupSettings,
    group_of,
    json_bytes,
    receipt,
    status_error,
)
from warnbot.model import Message, Receipt

SIGNATURE_HEADER = "X-Warnbot-Signature"
TIMESTAMP_HEADER = "X-Warnbot-Timestamp"


class WebhookTarget(GroupSettings):
    """A receiving system: where to POST, and the secret to sign with (None: unsigned)."""

    url: str = Field(pattern=r"^https?://")
    secret: SecretStr | None = None


class WebhookSettings(ChannelSettings[WebhookTarget]):
    """``[channels.webhook]``."""


def signature(secret: str, body: bytes) -> str:
    """The ``X-Warnbot-Signature`` value: ``sha256=`` and the hex HMAC of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class JsonWebhook(GroupBot[WebhookSettings]):
    """POSTs each message as JSON to the target named by ``message.to``."""

    name = "webhook"
    settings_model = WebhookSettings

    async def send(self, message: Message) -> Receipt:
        target = group_of(self.settings.groups, self.name, message.to)
        now_s = self.clock()
        body = json_bytes(payload(message, now_s))
        reply = await self.http.post(target.url, body, headers=self._headers(target, body, now_s))
        return receipt(message, status_error(reply, f"webhook {message.to}"))

    def _headers(self, target: WebhookTarget, body: bytes, now_s: float) -> dict[str, str]:
        if target.secret is None:
            return {}
        return {
            SIGNATURE_HEADER: signature(target.secret.get_secret_value(), body),
            TIMESTAMP_HEADER: str(int(now_s)),
        }


def payload(message: Message, now_s: float) -> dict[str, Any]:
    """What a broadcast system needs to play or show the warning, and to do it once."""
    return {
        "key": message.key,
        "incident_id": message.incident_id,
        "text": message.body,
        "mentions": list(message.mentions),
        "sent_at": datetime.fromtimestamp(now_s, UTC).isoformat(timespec="seconds"),
    }
