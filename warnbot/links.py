"""Short signed ack links: ``/a/<token>`` names one request and cannot be guessed.

A token is the request id in base 36, a dot, and 12 characters of an
HMAC-SHA256 over it (72 bits): short enough for a 70-character Chinese SMS
segment, and forging one means guessing the MAC online. The token grants
exactly one thing — confirming that one request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_MAC_CHARS = 12
_MAX_ID_CHARS = 13  # base 36: enough for any 64-bit id; longer heads are refused unparsed


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def sign(request_id: int, secret: str) -> str:
    """The token for ``request_id`` (ids are positive)."""
    if request_id < 0:
        raise ValueError("request ids are not negative")
    return f"{_base36(request_id)}.{_mac(request_id, secret)}"


def verify(token: str, secret: str) -> int | None:
    """The request id a token names, or None when it is malformed or forged."""
    head, _, mac = token.partition(".")
    if not (head.isascii() and head.isalnum()) or len(head) > _MAX_ID_CHARS:
        return None
    request_id = int(head, 36)
    ok = hmac.compare_digest(mac.encode(), _mac(request_id, secret).encode())
    return request_id if ok and head == _base36(request_id) else None


def _mac(request_id: int, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"ack:{request_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:_MAC_CHARS]


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out
