"""Twilio SMS through the official SDK and its aiohttp client.

``api_base_url`` replaces the SDK's ``https://api.twilio.com`` so a proxy, or
the local fake provider of the demo and the tests, can stand in.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from warnbot.channels._http import retry_after_s
from warnbot.errors import SendError
from warnbot.model import Message, Receipt
from warnbot.settings import TwilioSettings

# Twilio codes worth retrying besides HTTP 429/5xx: 20429 too many requests,
# 20500/20503 internal error/service unavailable.
RETRYABLE_CODES = frozenset({20429, 20500, 20503})

# The SDK raises TwilioRestException without the response's headers; the HTTP client
# notes the last Retry-After here. A context variable: each sending task sees only
# its own request's.
_retry_after: ContextVar[str | None] = ContextVar("twilio_retry_after", default=None)


class TwilioSms:
    """Sends SMS with ``client.messages.create_async``; can look a message up again."""

    name = "twilio"

    def __init__(self, settings: TwilioSettings, status_callback: str | None = None) -> None:
        self.settings, self.status_callback = settings, status_callback
        self.http, self.client = make_client(settings)

    async def send(self, message: Message) -> Receipt:
        options: dict[str, Any] = {
            "to": message.to,
            "from_": self.settings.from_number,
            "body": message.body,
        }
        validity_s = message.validity_s or self.settings.validity_period_s
        if validity_s is not None:
            options["validity_period"] = validity_s
        if self.status_callback:
            options["status_callback"] = self.status_callback
        try:  # inline, not `async with errors()`: this is the hot path
            sent = await self.client.messages.create_async(**options)
        except TwilioRestException as e:
            raise classify(e, _retry_after.get()) from e
        except (aiohttp.ClientError, TimeoutError) as e:
            raise unreachable(e) from e
        return Receipt(provider_id=sent.sid, status=sent.status or "queued")

    async def reconcile(self, message: Message, since: datetime) -> Receipt | None:
        """Did Twilio already take this message (before a crash)? Twilio keeps no key of
        ours, so look among the recent messages to that number for the same body."""
        async with errors():
            recent = await self.client.messages.list_async(to=message.to, limit=50)
        floor = since - timedelta(minutes=5)
        for m in recent:
            if m.body == message.body and (m.date_created is None or m.date_created >= floor):
                return Receipt(provider_id=m.sid, status=m.status or "queued")
        return None

    async def aclose(self) -> None:
        await self.http.close()


def make_client(settings: TwilioSettings) -> tuple[AsyncTwilioHttpClient, Client]:
    """The official SDK on its aiohttp client, pointed at ``api_base_url``."""
    if settings.auth_token is None or not settings.account_sid:
        raise SendError("Twilio account_sid and auth token are not configured", retryable=False)
    http = TimedHttpClient(settings.timeout_s)
    client = Client(settings.account_sid, settings.auth_token.get_secret_value(), http_client=http)
    client.api.base_url = settings.api_base_url.rstrip("/")
    return http, client


class TimedHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The SDK's aiohttp client with one session whose timeout covers every request
    (cheaper than a timeout context around each call). The session is made at the
    first request: `warnbot run` builds its channels before the event loop runs."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(pool_connections=False)
        self.session: aiohttp.ClientSession | None = None
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        """The SDK's request, noting the answer's Retry-After for :func:`classify`."""
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=self.timeout)
        response = await super().request(*args, **kwargs)
        if response.status_code in (429, 503):
            _retry_after.set(response.headers.get("Retry-After"))
        return response


@contextlib.asynccontextmanager
async def errors() -> AsyncIterator[None]:
    """Twilio and network failures as SendErrors that say whether to retry."""
    try:
        yield
    except TwilioRestException as e:
        raise classify(e, _retry_after.get()) from e
    except (aiohttp.ClientError, TimeoutError) as e:
        raise unreachable(e) from e


def unreachable(e: Exception) -> SendError:
    """Transient; in doubt unless the connection was never made (a timeout or a reset
    may come after Twilio took the message)."""
    never_sent = isinstance(e, aiohttp.ClientConnectorError)
    return SendError(
        f"Twilio unreachable: {type(e).__name__}", retryable=True, in_doubt=not never_sent
    )


def classify(e: TwilioRestException, retry_after: str | None = None) -> SendError:
    """Transient (429, 5xx, 20429 …) or permanent (21211 invalid number …); a 429 or
    503 answer's ``Retry-After`` says how long the retry must wait at least."""
    retryable = e.status == 429 or e.status >= 500 or e.code in RETRYABLE_CODES
    return SendError(
        f"Twilio {e.status} code {e.code}: {e.msg}",
        retryable=retryable,
        code=str(e.code) if e.code is not None else None,
        retry_after_s=retry_after_s(retry_after) if e.status in (429, 503) else None,
    )
