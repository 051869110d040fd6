"""delivery error codes up to 64 characters: Aliyun's receipt codes
(MOBILE_NOT_ON_SERVICE, MOBLLE_TERMINAL_ERROR) are longer than Twilio's

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (("outbox", "provider_error"), ("early_reports", "error"))


def upgrade() -> None:
    for table, column in _COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.String(length=16), type_=sa.String(length=64)
            )


def downgrade() -> None:
    for table, column in _COLUMNS:
        # cut longer codes first: PostgreSQL refuses to narrow a column over them
        cut = f"UPDATE {table} SET {column} = substr({column}, 1, 16) WHERE length({column}) > 16"
        op.execute(sa.text(cut))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.String(length=64), type_=sa.String(length=16)
            )
