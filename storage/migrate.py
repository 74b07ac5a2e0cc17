"""Runs the Alembic migrations from code: no alembic.ini is needed at run time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.engine import create_engine, write_engine

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic itself is imported where it is used: it is ~10 MB of memory that only start-up needs,
# and the bot runs its migrations in a child process (Store.start(migrate_apart=True)).

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# The newest migration's revision, known without Alembic: a start-up finds the database already at
# it in one query and skips Alembic altogether (tests/test_storage_migrations.py checks that it is
# Alembic's head, so a new migration that forgets to bump it fails the suite).
HEAD_REVISION = "0006"

# Any constant will do; it only has to be the same in every process of the deployment.
_PG_MIGRATION_LOCK = 0x6B696D69  # "kimi"


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(database_url: str | URL, revision: str = "head") -> None:
    """Bring the database to `revision`, in one transaction.

    Several processes may start at once: on PostgreSQL an advisory lock makes the others wait
    and then find nothing left to do; on SQLite the BEGIN IMMEDIATE of the write transaction
    does the same.
    """
    engine = create_engine(database_url, for_migrations=True)
    try:
        async with write_engine(engine).begin() as connection:
            if connection.dialect.name == "postgresql":
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            await connection.run_sync(_upgrade, revision)
    finally:
        await engine.dispose()


async def is_at_head(engine: AsyncEngine) -> bool:
    """Whether the database is already at HEAD_REVISION: one read through the caller's engine,
    no Alembic. False for a fresh database (no alembic_version table) or an older one (and for a
    newer one, which the upgrade then refuses, as it always did)."""
    async with engine.connect() as connection:
        if not await connection.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
            return False
        versions = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars()
        return list(versions) == [HEAD_REVISION]


async def current_revision(database_url: str | URL) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(database_url, for_migrations=True)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
