"""Slack incoming webhook: a text message to the channel the webhook was made for.

POST ``{"text": …}`` to the group's ``webhook_url`` (a secret:
``https://hooks.slack.com/services/T…/B…/…``). Mentions are Slack user ids,
written ``<@U0123>``. Slack answers ``200 ok``; ``429`` with ``Retry-After``
when over its limit (about one message a second per webhook); ``400
invalid_payload``, ``403 action_prohibited``/``invalid_token``, ``404
no_service``/``channel_not_found`` and ``410 channel_is_archived`` need a person.

Settings (secrets only from the environment)::

    [channels.slack.groups.duty]
    name = "#flood-duty"
    # WARNBOT_CHANNELS__SLACK__GROUPS__DUTY__WEBHOOK_URL=https://hooks.slack.com/services/…
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr, field_validator

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


class SlackGroup(GroupSettings):
    """A channel's incoming webhook; its URL is the only credential."""

    webhook_url: SecretStr

    @field_validator("webhook_url")
    @classmethod
    def _is_http(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return v


class SlackSettings(ChannelSettings[SlackGroup]):
    """``[channels.slack]``."""


class SlackWebhook(GroupBot[SlackSettings]):
    """Posts ``message.body`` to the Slack channel named by ``message.to``."""

    name = "slack"
    settings_model = SlackSettings

    async def send(self, message: Message) -> Receipt:
        group = group_of(self.settings.groups, self.name, message.to)
        reply = await self.http.post(
            group.webhook_url.get_secret_value(), json_bytes(payload(message))
        )
        return receipt(message, status_error(reply, f"slack {message.to}"))


def payload(message: Message) -> dict[str, Any]:
    """``{"text"}`` with ``<@USERID>`` for each mentioned person appended."""
    tags = " ".join(f"<@{user_id}>" for user_id in message.mentions)
    return {"text": f"{message.body}\n{tags}" if tags else message.body}
