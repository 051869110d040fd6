"""incident events as the journal of their follow-ups; one CAP document per event

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import warnbot.store.tables

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = warnbot.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("incident_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("done_at", _UTC, nullable=True))
        batch_op.add_column(sa.Column("detail", sa.JSON(), nullable=True))
        batch_op.create_index("ix_incident_events_unfinished", ["done_at", "at"], unique=False)
    # events recorded before this revision were followed up as they happened
    op.execute("UPDATE incident_events SET done_at = at")
    with op.batch_alter_table("cap_documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_id", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint("uq_cap_documents_event_id", ["event_id"])


def downgrade() -> None:
    with op.batch_alter_table("cap_documents", schema=None) as batch_op:
        batch_op.drop_constraint("uq_cap_documents_event_id", type_="unique")
        batch_op.drop_column("event_id")
    with op.batch_alter_table("incident_events", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_events_unfinished")
        batch_op.drop_column("detail")
        batch_op.drop_column("done_at")
