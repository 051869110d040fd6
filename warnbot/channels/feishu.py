"""Feishu/Lark (飞书) custom bot with signature verification: a text message to a group.

POST ``{api_base_url}/open-apis/bot/v2/hook/<hook_token>`` with
``{"timestamp": "<s>", "sign": …, "msg_type": "text", "content": {"text": …}}``,
where ``sign`` is base64 HmacSHA256 *keyed by* ``"{timestamp}\\n{secret}"`` over
an empty message (the reverse of DingTalk's). Mentions are Feishu user ids
(``ou_…`` open_id, union_id or user_id) written as ``<at user_id="…"></at>``;
Feishu fills in the name. It answers ``{"code": 0, "msg": "success", …}`` (old
deployments only ``{"StatusCode": 0, …}``), with HTTP 200 even for refusals.
The timestamp must be within an hour; a bot takes 100 messages a minute, 5 a second.
For Lark, set ``api_base_url = "https://open.larksuite.com"``.

Settings (secrets only from the environment)::

    [channels.feishu.groups.county_duty]
    name = "县防指值班群"
    # WARNBOT_CHANNELS__FEISHU__GROUPS__COUNTY_DUTY__HOOK_TOKEN=<the last path segment>
    # WARNBOT_CHANNELS__FEISHU__GROUPS__COUNTY_DUTY__SECRET=…
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from pydantic import Field, SecretStr

from warnbot.channels._http import (
    ChannelSettings,
    GroupBot,
    GroupSettings,
    code_error,
    group_of,
    json_bytes,
    receipt,
)
from warnbot.model import Message, Receipt

# 9499 and 11232 are the custom bot's rate limits, 99991400 the platform's generic
# one. 19021 (sign or timestamp), 19001 (hook token invalid), 19024 (keyword
# missing), 19022 (IP not allowed) and the rest need a person.
TRANSIENT = frozenset({9499, 11232, 99991400})


class FeishuGroup(GroupSettings):
    """A custom bot: the token ending its webhook URL and its signing secret."""

    hook_token: SecretStr
    secret: SecretStr


class FeishuSettings(ChannelSettings[FeishuGroup]):
    """``[channels.feishu]``; ``api_base_url`` lets Lark, a proxy or a local fake stand in."""

    api_base_url: str = Field(default="https://open.feishu.cn", pattern=r"^https?://")


def sign(secret: str, timestamp_s: int) -> str:
    """Feishu's signature: base64(HmacSHA256(key="{timestamp}\\n{secret}", msg=b""))."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class FeishuBot(GroupBot[FeishuSettings]):
    """Sends ``message.body`` to the Feishu group named by ``message.to``."""

    name = "feishu"
    settings_model = FeishuSettings

    async def send(self, message: Message) -> Receipt:
        group = group_of(self.settings.groups, self.name, message.to)
        base = self.settings.api_base_url.rstrip("/")
        url = f"{base}/open-apis/bot/v2/hook/{group.hook_token.get_secret_value()}"
        body = self._signed(group) | payload(message)
        reply = await self.http.post(url, json_bytes(body))
        where = f"feishu {message.to}"
        fields = ("code", "StatusCode")
        return receipt(message, code_error(reply, where, fields=fields, transient=TRANSIENT))

    def _signed(self, group: FeishuGroup) -> dict[str, str]:
        timestamp_s = int(self.clock())
        return {
            "timestamp": str(timestamp_s),
            "sign": sign(group.secret.get_secret_value(), timestamp_s),
        }


def payload(message: Message) -> dict[str, Any]:
    """The text message, the ``<at>`` tags of the mentioned persons appended."""
    tags = " ".join(f'<at user_id="{user_id}"></at>' for user_id in message.mentions)
    text = f"{message.body}\n{tags}" if tags else message.body
    return {"msg_type": "text", "content": {"text": text}}
