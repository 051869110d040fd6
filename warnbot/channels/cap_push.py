"""Push CAP documents to downstream systems (应急广播, screens, the next office up).

The message's address is the downstream URL and its body the CAP XML. A 2xx is
accepted; 408, 429 and 5xx, timeouts and refused connections are transient;
any other status is permanent (the receiver will not take this document).
"""

from __future__ import annotations

import os

import aiohttp

from warnbot.errors import SendError
from warnbot.model import Message, Receipt
from warnbot.settings import DownstreamSettings

_TRANSIENT = frozenset({408, 425, 429})


class CapPush:
    """POSTs ``application/cap+xml`` to each configured downstream."""

    name = "cap"

    def __init__(self, downstream: list[DownstreamSettings]) -> None:
        self.by_url = {d.url: d for d in downstream}
        self.session: aiohttp.ClientSession | None = None

    async def send(self, message: Message) -> Receipt:
        target = self.by_url.get(message.to)
        if target is None:
            raise SendError(f"{message.to} is not a configured downstream", retryable=False)
        try:
            status = await self._post(target, message.body.encode())
        except (aiohttp.ClientError, TimeoutError) as e:
            raise SendError(f"{target.name}: {type(e).__name__} {e}", retryable=True) from e
        if 200 <= status < 300:
            return Receipt(provider_id=f"{target.name}:{status}")
        transient = status in _TRANSIENT or status >= 500
        raise SendError(f"{target.name}: HTTP {status}", retryable=transient, code=str(status))

    async def _post(self, target: DownstreamSettings, xml: bytes) -> int:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        headers = {"Content-Type": "application/cap+xml; charset=utf-8"}
        token = os.environ.get(target.token_env) if target.token_env else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        timeout = aiohttp.ClientTimeout(total=target.timeout_s)
        async with self.session.post(
            target.url, data=xml, headers=headers, timeout=timeout
        ) as resp:
            return resp.status

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()
