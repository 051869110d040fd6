"""MQTT subscriber for sensor networks (waterlogging, slope, reservoir, rain).

``url = "mqtt://HOST:PORT/TOPIC"`` (wildcards allowed); each message is JSON
read with the feed's generic ``mapping``. The subscription reconnects with
exponential backoff; every failure is a health entry, never a crash.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from urllib.parse import unquote, urlsplit

import aiomqtt

from warnbot import log
from warnbot.app import App
from warnbot.errors import FeedError
from warnbot.evaluate import Transition
from warnbot.ingest import poller
from warnbot.settings import FeedSettings

_log = log.get(__name__)


async def handle(app: App, feed: FeedSettings, payload: bytes) -> list[Transition]:
    """One MQTT message: parse, record health, hand the readings on."""
    try:
        readings = poller.read(feed, "json", payload, app.settings.language)
    except FeedError as e:
        _log.warning("mqtt_message_refused", feed=feed.name, error=str(e))
        await app.store.feed_failed(feed.name, str(e), app.clock())
        return []
    await app.store.feed_ok(feed.name, app.clock())
    return await poller.take(app, feed.name, readings)


async def subscribe(app: App, feed: FeedSettings, ready: asyncio.Event | None = None) -> None:
    """Run until cancelled; ``ready`` is set each time the subscription is in place."""
    url = urlsplit(feed.url)
    delay_s = 1.0
    while True:
        try:
            async with _client(
                feed, url.hostname or "127.0.0.1", url.port or 1883, url.scheme == "mqtts"
            ) as client:
                await client.subscribe(unquote(url.path.lstrip("/")), qos=1)
                delay_s = 1.0
                if ready is not None:
                    ready.set()
                async for message in client.messages:
                    await handle(app, feed, _bytes(message.payload))
        except aiomqtt.MqttError as e:
            await app.store.feed_failed(feed.name, f"MQTT {url.netloc}: {e}", app.clock())
            _log.warning("mqtt_disconnected", feed=feed.name, error=str(e), retry_s=delay_s)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, feed.max_backoff_s)


def _client(feed: FeedSettings, host: str, port: int, tls: bool) -> aiomqtt.Client:
    return aiomqtt.Client(
        host,
        port,
        identifier=f"warnbot-{feed.name}-{os.getpid()}",
        timeout=feed.timeout_s,
        tls_context=ssl.create_default_context() if tls else None,
    )


def _bytes(payload: object) -> bytes:
    """aiomqtt types payloads loosely (str, bytes, numbers, None); we want the wire bytes."""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()
