"""incident events, sign-in throttle per name, API token revocation, audit via,
metric totals and marks

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import warnbot.store.tables

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = warnbot.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incident_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("previous_level", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("warning_key", sa.String(length=300), nullable=True),
        sa.Column("at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incident_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_incident_events_incident_id"), ["incident_id"], unique=False
        )
    op.create_table(
        "sign_in_throttle",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", _UTC, nullable=True),
        sa.Column("last_failure_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", _UTC, nullable=True))
    op.create_table(
        "metric_totals",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.String(length=300), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", "labels"),
    )
    op.create_table(
        "metric_marks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("console_audit", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("via", sa.String(length=16), server_default="console", nullable=False)
        )


def downgrade() -> None:
    op.drop_table("metric_marks")
    op.drop_table("metric_totals")
    with op.batch_alter_table("console_audit", schema=None) as batch_op:
        batch_op.drop_column("via")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
    op.drop_table("sign_in_throttle")
    with op.batch_alter_table("incident_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_events_incident_id"))
    op.drop_table("incident_events")
