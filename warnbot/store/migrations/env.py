"""Alembic environment: runs on the connection warnbot hands it (see store/db.py)."""

from alembic import context

from warnbot.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations with `warnbot db upgrade`")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
