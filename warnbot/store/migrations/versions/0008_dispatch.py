"""dispatch: delivery reports that arrive before their send is recorded

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import warnbot.store.tables

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = warnbot.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "early_reports",
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=16), nullable=True),
        sa.Column("received_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("provider_id", "status"),
    )
    with op.batch_alter_table("early_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_early_reports_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("early_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_early_reports_received_at"))
    op.drop_table("early_reports")
