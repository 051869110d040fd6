"""叫应 ladder: per-person states, the level asked under, muster, every answer kept

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import warnbot.store.tables

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = warnbot.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivered_at", _TS, nullable=True))
        batch_op.add_column(sa.Column("unreachable_at", _TS, nullable=True))
        batch_op.add_column(sa.Column("level", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("policy", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("muster_deadline", _TS, nullable=True))
        batch_op.add_column(sa.Column("arrived_at", _TS, nullable=True))
    # requests made before 0004 were asked under their incident's level (upgrades then
    # added tiers and never asked anyone twice)
    op.execute(
        "UPDATE requests SET level = "
        "(SELECT incidents.level FROM incidents WHERE incidents.id = requests.incident_id)"
    )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_constraint("uq_requests_incident_responder", type_="unique")
        batch_op.create_unique_constraint(
            "uq_requests_incident_responder_level", ["incident_id", "responder_key", "level"]
        )
    op.create_table(
        "answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("responder_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("path", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("by_name", sa.String(length=100), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_answers_request_id"), ["request_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("answers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_answers_request_id"))
    op.drop_table("answers")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_constraint("uq_requests_incident_responder_level", type_="unique")
        batch_op.create_unique_constraint(
            "uq_requests_incident_responder", ["incident_id", "responder_key"]
        )
        batch_op.drop_column("arrived_at")
        batch_op.drop_column("muster_deadline")
        batch_op.drop_column("policy")
        batch_op.drop_column("level")
        batch_op.drop_column("unreachable_at")
        batch_op.drop_column("delivered_at")
