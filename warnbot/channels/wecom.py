"""WeCom (企业微信) group robot: a text message to a group, @-ing its responsible persons.

POST ``{api_base_url}/cgi-bin/webhook/send?key=<webhook_key>`` with
``{"msgtype": "text", "text": {"content", "mentioned_mobile_list", "mentioned_list"}}``;
WeCom answers ``{"errcode": 0, "errmsg": "ok"}``. Mentions that are mainland
mobiles go to ``mentioned_mobile_list`` (WeCom @s by phone), others are WeCom
user ids. The robot takes 20 messages a minute; beyond that it answers 45009.

Settings (secrets only from the environment)::

    [channels.wecom]
    timeout_s = 10
    [channels.wecom.groups.county_duty]
    name = "县防指值班群"
    # WARNBOT_CHANNELS__WECOM__GROUPS__COUNTY_DUTY__WEBHOOK_KEY=693a91f6-…
"""

from __future__ import annotations

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

# Global error codes (developer.work.weixin.qq.com/document/path/90313): -1 system
# busy, 45009 api freq out of limit. Everything else (93000 invalid webhook url,
# 40008 invalid message type, 44004 empty content …) needs a person to fix it.
TRANSIENT = frozenset({-1, 45009})


class WeComGroup(GroupSettings):
    """A group robot; its webhook key is the secret after ``?key=`` in its URL."""

    webhook_key: SecretStr


class WeComSettings(ChannelSettings[WeComGroup]):
    """``[channels.wecom]``; ``api_base_url`` lets a proxy or a local fake stand in."""

    api_base_url: str = Field(default="https://qyapi.weixin.qq.com", pattern=r"^https?://")


class WeComBot(GroupBot[WeComSettings]):
    """Sends ``message.body`` to the WeCom group named by ``message.to``."""

    name = "wecom"
    settings_model = WeComSettings

    async def send(self, message: Message) -> Receipt:
        group = group_of(self.settings.groups, self.name, message.to)
        url = f"{self.settings.api_base_url.rstrip('/')}/cgi-bin/webhook/send"
        key = {"key": group.webhook_key.get_secret_value()}
        reply = await self.http.post(url, json_bytes(payload(message)), params=key)
        where = f"wecom {message.to}"
        return receipt(message, code_error(reply, where, fields=("errcode",), transient=TRANSIENT))


def payload(message: Message) -> dict[str, Any]:
    """The text message; WeCom renders the @mentions itself, so the content stays as written."""
    mobiles, user_ids = split_mentions(message.mentions)
    text: dict[str, Any] = {"content": message.body}
    if mobiles:
        text["mentioned_mobile_list"] = mobiles
    if user_ids:
        text["mentioned_list"] = user_ids
    return {"msgtype": "text", "text": text}
