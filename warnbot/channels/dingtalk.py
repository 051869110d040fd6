"""DingTalk (钉钉) custom robot with 加签 signing: a text message to a group, @-ing persons.

POST ``{api_base_url}/robot/send?access_token=…&timestamp=<ms>&sign=…`` where
``sign`` is base64 HmacSHA256 keyed by the secret over ``"{timestamp}\\n{secret}"``
(percent-encoded in the URL), with
``{"msgtype": "text", "text": {"content"}, "at": {"atMobiles", "atUserIds"}}``.
DingTalk answers ``{"errcode": 0, "errmsg": "ok"}``. A person is only
highlighted when ``@<mobile>`` (or ``@<userid>``) also appears in the content,
so the mentions are appended to the text. The timestamp must be within an hour
of DingTalk's clock; a robot takes 20 messages a minute.

Settings (secrets only from the environment)::

    [channels.dingtalk.groups.county_duty]
    name = "县防指值班群"
    # WARNBOT_CHANNELS__DINGTALK__GROUPS__COUNTY_DUTY__ACCESS_TOKEN=…
    # WARNBOT_CHANNELS__DINGTALK__GROUPS__COUNTY_DUTY__SECRET=SEC…
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
    split_mentions,
)
from warnbot.model import Message, Receipt

# -1 系统繁忙; 130101 "send too fast, exceed 20 times per minute"; 410100 发送速度太快而限流
# (the newer name of the same limit). 310000 (sign, timestamp, keyword or IP refused),
# 300001 (token is not exist) and the rest need a person.
TRANSIENT = frozenset({-1, 130101, 410100})


class DingTalkGroup(GroupSettings):
    """A custom robot: the ``access_token`` of its webhook URL and its 加签 secret (``SEC…``)."""

    access_token: SecretStr
    secret: SecretStr


class DingTalkSettings(ChannelSettings[DingTalkGroup]):
    """``[channels.dingtalk]``; ``api_base_url`` lets a proxy or a local fake stand in."""

    api_base_url: str = Field(default="https://oapi.dingtalk.com", pattern=r"^https?://")


def sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: base64(HmacSHA256(key=secret, msg="{timestamp}\\n{secret}"))."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()).decode()


class DingTalkBot(GroupBot[DingTalkSettings]):
    """Sends ``message.body`` to the DingTalk group named by ``message.to``."""

    name = "dingtalk"
    settings_model = DingTalkSettings

    async def send(self, message: Message) -> Receipt:
        group = group_of(self.settings.groups, self.name, message.to)
        url = f"{self.settings.api_base_url.rstrip('/')}/robot/send"
        reply = await self.http.post(url, json_bytes(payload(message)), params=self._query(group))
        where = f"dingtalk {message.to}"
        return receipt(message, code_error(reply, where, fields=("errcode",), transient=TRANSIENT))

    def _query(self, group: DingTalkGroup) -> dict[str, str]:
        timestamp_ms = int(self.clock() * 1000)
        return {
            "access_token": group.access_token.get_secret_value(),
            "timestamp": str(timestamp_ms),
            "sign": sign(group.secret.get_secret_value(), timestamp_ms),
        }


def payload(message: Message) -> dict[str, Any]:
    """The text message with ``@<mobile>``/``@<userid>`` in the content and in ``at``."""
    mobiles, user_ids = split_mentions(message.mentions)
    tags = " ".join(f"@{m}" for m in [*mobiles, *user_ids])
    content = f"{message.body}\n{tags}" if tags else message.body
    at = {"atMobiles": mobiles, "atUserIds": user_ids, "isAtAll": False}
    return {"msgtype": "text", "text": {"content": content}, "at": at}
