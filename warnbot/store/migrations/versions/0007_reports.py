"""reports back (回执), transfer-list progress, drills

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import warnbot.store.tables

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = warnbot.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("responder_key", sa.String(length=64), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.Column("path", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=True),
        sa.Column("households_moved", sa.Integer(), nullable=True),
        sa.Column("people_moved", sa.Integer(), nullable=True),
        sa.Column("teams_out", sa.Integer(), nullable=True),
        sa.Column("staff_out", sa.Integer(), nullable=True),
        sa.Column("patrols", sa.Integer(), nullable=True),
        sa.Column("arrived", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("cumulative", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("all_moved", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=True),
        sa.Column("received_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_key"),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reports_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "transfer_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("responder_key", sa.String(length=64), nullable=False),
        sa.Column("no", sa.String(length=8), nullable=False),
        sa.Column("household", sa.String(length=200), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("route", sa.Text(), nullable=False),
        sa.Column("destination", sa.String(length=300), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("responder_key", "no", name="uq_transfer_entries_responder_no"),
    )
    op.create_table(
        "transfer_marks",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("responder_key", sa.String(length=64), nullable=False),
        sa.Column("no", sa.String(length=8), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("moved_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "responder_key", "no"),
    )
    op.create_table(
        "drill_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("window_start", _UTC, nullable=False),
        sa.Column("window_end", _UTC, nullable=False),
        sa.Column("fire_at", _UTC, nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("hazard", sa.String(length=100), nullable=False),
        sa.Column("headline", sa.Text(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_at", _UTC, nullable=True),
        sa.Column("incident_ids", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("drill_plans", schema=None) as batch_op:
        batch_op.create_index("ix_drill_plans_status_fire_at", ["status", "fire_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("drill_plans", schema=None) as batch_op:
        batch_op.drop_index("ix_drill_plans_status_fire_at")
    op.drop_table("drill_plans")
    op.drop_table("transfer_marks")
    op.drop_table("transfer_entries")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_incident_id"))
    op.drop_table("reports")
