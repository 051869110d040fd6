"""structlog set-up: pretty on a terminal, JSON lines otherwise.

Every event passes through ``redact`` before it is written: phone numbers are
masked to ``+86138****5678``, values under secret-looking keys are dropped, and
every configured secret (registered with ``hide`` when the app starts) is blanked
wherever it appears — an exception's text and traceback included — so a log line
can be pasted into a ticket without leaking a person or a key.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO, cast

import structlog

_PHONE = re.compile(r"\+\d{7,15}\b|(?<!\d)1[3-9]\d{9}(?!\d)")
_SECRET_KEY = re.compile(r"token|secret|password|auth|signature|api_key", re.IGNORECASE)


_hidden: list[str] = []  # configured secret values, longest first
MIN_SECRET_LEN = 6  # shorter values would blank ordinary words


def hide(values: Iterable[str]) -> None:
    """Register secret values to blank out of every log line from now on."""
    found = {*_hidden, *(v for v in values if len(v) >= MIN_SECRET_LEN)}
    _hidden[:] = sorted(found, key=len, reverse=True)


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``[secret]``."""
    for value in _hidden:
        if value in text:
            text = text.replace(value, "[secret]")
    return text


def mask_phone(text: str) -> str:
    """Keep at most the first 6 and the last 4 characters of each phone number in ``text``,
    hiding at least four digits: ``+86138****5678``, ``138****5678``."""
    return _PHONE.sub(_mask_match, text)


def _mask_match(m: re.Match[str]) -> str:
    number = m.group(0)
    if len(number) <= 10:
        return number[:3] + "****"
    return number[: min(6, len(number) - 8)] + "****" + number[-4:]


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: hide secret-named keys and registered secret values,
    mask phones in every string."""
    for key, value in list(event.items()):
        if _SECRET_KEY.search(key):
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = mask_phone(scrub(value))
    return event


def configure(fmt: Literal["auto", "json", "console"] = "auto", level: int = logging.INFO) -> None:
    """Configure structlog once at start; ``auto`` picks by whether stderr is a TTY."""
    pretty = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if pretty
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=True,  # a filtered call must cost ~nothing
    )
    # Our jobs log their own failures; APScheduler's notes on skipped overlapping
    # runs are expected under load and only noise.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    _route_stdlib_logging()


def _route_stdlib_logging() -> None:
    """Libraries log through the standard library (asyncio, aiohttp, SQLAlchemy):
    their records go to stderr through the same scrubbing, never around it."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_warnbot", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(cast(TextIO, _CurrentStderr()))
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_scrub_record)
    handler._warnbot = True  # type: ignore[attr-defined]
    root.addHandler(handler)


def _scrub_record(record: logging.LogRecord) -> bool:
    """Blank secrets and mask phones in a standard-library record, traceback included."""
    record.msg, record.args = mask_phone(scrub(record.getMessage())), None
    if record.exc_info:
        trace = "".join(traceback.format_exception(*record.exc_info))
        record.exc_text, record.exc_info = mask_phone(scrub(trace)), None
    return True


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written, not when the logger was
    made: loggers are cached on first use, and a redirect (pytest's capture, a
    daemon re-opening its log) must still receive what they write."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


Logger = structlog.stdlib.BoundLogger


def get(name: str) -> Logger:
    """A logger named for its module."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
