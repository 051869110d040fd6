"""Local stand-ins for URL-addressed webhooks: Slack's incoming webhooks and a broadcast
receiver (村村响 / 应急广播) speaking warnbot's signed JSON webhook.

Like :mod:`warnbot.fakes.chatbots`, each is a real aiohttp app on ``127.0.0.1``
that refuses what the real receiver refuses — Slack an unknown webhook path or a
payload without text, the receiver a missing or wrong ``X-Warnbot-Signature`` —
and records what it accepted. ``url_for(group)`` is the URL to configure.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web

from warnbot.fakes.chatbots import FakeBot, Refused, json_object, same, text_of


class StatusBot(FakeBot):
    """Receivers answering with an HTTP status and a short text body."""

    UNKNOWN: ClassVar[str] = "not found"

    def __init__(self, paths: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.paths = dict(paths)
        self.groups_by_path = {path: group for group, path in paths.items()}

    def url_for(self, group: str) -> str:
        """The webhook URL of ``group`` on this server (``start`` first)."""
        return self.base_url + self.paths[group]

    def fail_next(
        self, status: int, body: str = "", *, retry_after: int | None = None, count: int = 1
    ) -> None:
        """Make the next ``count`` valid requests answer ``status`` (with ``Retry-After``)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._inject(lambda: web.Response(status=status, text=body, headers=headers), count)

    def _group(self, request: web.Request) -> str:
        group = self.groups_by_path.get(request.path)
        if group is None:
            raise Refused(404, self.UNKNOWN)
        return group

    def _error(self, code: int | str, message: str) -> web.StreamResponse:
        return web.Response(status=int(code), text=message)


class FakeSlack(StatusBot):
    """Slack's incoming webhooks: ``POST /services/T…/B…/…`` with ``{"text": …}``, answers ``ok``.

    ``hooks`` maps group name → webhook path, e.g. ``/services/T000/B000/XXXX``.
    """

    PATH = "/services/{team}/{bot}/{token}"
    UNKNOWN: ClassVar[str] = "no_service"

    def _check(self, request: web.Request, raw: bytes) -> str:
        group = self._group(request)
        body = json_object(raw, 400, "invalid_payload")
        if not text_of(body, "text"):
            raise Refused(400, "no_text", group)
        return group

    def _ok(self) -> web.StreamResponse:
        return web.Response(text="ok")


class FakeReceiver(StatusBot):
    """A broadcast system taking warnbot's JSON webhook at ``POST /{name}``.

    ``secrets`` maps group name → the shared secret, or None for an unsigned target.
    """

    PATH = "/{name}"

    def __init__(self, secrets: Mapping[str, str | None], **kwargs: Any) -> None:
        super().__init__({group: f"/{group}" for group in secrets}, **kwargs)
        self.secrets = dict(secrets)

    def _check(self, request: web.Request, raw: bytes) -> str:
        group = self._group(request)
        secret = self.secrets[group]
        if secret is not None and not _signed(request, raw, secret):
            raise Refused(401, "bad signature", group)
        json_object(raw, 400, "not a JSON object")
        return group

    def _ok(self) -> web.StreamResponse:
        return web.json_response({"ok": True})


def _signed(request: web.Request, raw: bytes, secret: str) -> bool:
    """``X-Warnbot-Signature: sha256=<hex HMAC-SHA256 of the raw body>``."""
    expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return same(request.headers.get("X-Warnbot-Signature", ""), expected)
