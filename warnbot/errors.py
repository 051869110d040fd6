"""warnbot's one error tree.

::

    WarnbotError
     ├── ConfigError          a settings/rules/roster file is invalid (carries every problem)
     ├── FeedError            a feed could not be fetched or read
     │    └── ParseError      a payload is malformed, hostile or not what the feed promises
     ├── SendError            a channel could not hand a message to its provider
     │                        (``retryable`` says whether trying again can help)
     └── AckError             an inbound confirmation could not be attributed
"""

from __future__ import annotations


class WarnbotError(Exception):
    """Base of every error warnbot raises on purpose."""


class ConfigError(WarnbotError):
    """Invalid configuration; ``problems`` lists each one as ``location: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class FeedError(WarnbotError):
    """A feed failed; the feed is marked unhealthy and the daemon goes on."""


class ParseError(FeedError):
    """A payload could not be parsed; the message says where and why."""


class SendError(WarnbotError):
    """A send failed. ``retryable`` is True for transient faults (429, 5xx, timeouts);
    ``retry_after_s`` is the provider's own word on when to try again (Retry-After);
    ``in_doubt`` says the provider may have taken the message all the same."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        code: str | None = None,
        retry_after_s: float | None = None,
        in_doubt: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.code = code
        self.retry_after_s = retry_after_s
        # the request may have reached the provider (the answer was lost): reconcile first
        self.in_doubt = in_doubt


class AckError(WarnbotError):
    """An inbound answer matched no open request of that person."""
