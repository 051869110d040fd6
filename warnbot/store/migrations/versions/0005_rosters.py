"""rosters: public audiences, duty rota, transfer lists

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import warnbot.store.tables

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("responders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chat_ids", sa.JSON(), nullable=True))

    op.create_table(
        "audiences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("imported_at", warnbot.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "audience_members",
        sa.Column("audience_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=False),
        sa.PrimaryKeyConstraint("audience_id", "phone"),
    )


def downgrade() -> None:
    op.drop_table("audience_members")
    op.drop_table("audiences")
    with op.batch_alter_table("responders", schema=None) as batch_op:
        batch_op.drop_column("chat_ids")
