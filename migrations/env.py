"""Alembic environment: URL from the caller's config attributes, batch mode for SQLite."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import lifecycle.inventory.models
import lifecycle.store.models
import lifecycle.store.notifications
import lifecycle.store.queue
import lifecycle.store.tlog  # noqa: F401
from lifecycle.store.db import make_engine

config = context.config
target_metadata = SQLModel.metadata
url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")


def run_offline() -> None:
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
