"""one open incident per key: two decisions racing (two gauge feeds crossing one rule,
a warning and a reading) opened the same hazard and region twice, asking everyone twice

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    # Twins opened before this revision stay open (their escalations may be running),
    # the later ones under "KEY#ID", so the index holds and nothing in flight stops.
    op.execute(
        sa.text(
            "UPDATE incidents SET key = key || '#' || CAST(id AS VARCHAR(20)) "
            "WHERE status = 'open' AND EXISTS (SELECT 1 FROM incidents AS first "
            "WHERE first.key = incidents.key AND first.status = 'open' "
            "AND first.id < incidents.id)"
        )
    )
    op.create_index(
        "uq_incidents_open_key",
        "incidents",
        ["key"],
        unique=True,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_index("uq_incidents_open_key", table_name="incidents")
