"""Alembic environment for async engines.

Two ways in:
- storage.migrate (at start-up) hands over an open connection, already inside the transaction
  it will commit, in config.attributes["connection"];
- the alembic command line (alembic -c storage/migrations/alembic.ini ...) has none, so one is
  made here from sqlalchemy.url or DATABASE_URL, the same way.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import storage.tables  # noqa: F401  (fills SQLModel.metadata for autogenerate)
from storage.engine import DEFAULT_DATABASE_URL, create_engine, write_engine

config = context.config
target_metadata = SQLModel.metadata


def _database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def run_migrations(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=sqlite,
        # The caller holds a BEGIN IMMEDIATE transaction and DDL is transactional in SQLite,
        # so a failed migration leaves the database as it was.
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            # Migrations run with foreign keys off (see storage.engine.create_engine); make sure
            # they did not leave a dangling reference behind before committing.
            problems = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
            if problems:
                raise RuntimeError(f"migration broke foreign keys: {problems[:5]}")


async def _run_with_own_engine() -> None:
    engine = create_engine(_database_url(), for_migrations=True)
    try:
        async with write_engine(engine).begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    run_migrations(given)
else:
    if config.config_file_name is not None:
        # The command line: let alembic.ini's logging sections show what runs.
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(_run_with_own_engine())
