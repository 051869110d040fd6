"""The only persistence API: methods named for what the stages need.

``Store`` wraps one async SQLAlchemy engine; SQLite and PostgreSQL run the same
code. Every write that must happen together (a request and its messages, a
ladder step and its messages) happens in one transaction, so a crash leaves
either both or neither.
"""

from warnbot.store.delivery import Report
from warnbot.store.ladder import AckResult, Answer
from warnbot.store.outbox import OutboxRow
from warnbot.store.store import Store

__all__ = ["AckResult", "Answer", "OutboxRow", "Report", "Store"]
