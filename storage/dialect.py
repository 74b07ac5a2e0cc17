"""INSERT … ON CONFLICT, which both dialects have but SQLAlchemy spells per dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects import sqlite
from sqlmodel.ext.asyncio.session import AsyncSession


def insert(dialect_name: str, table: Any) -> Any:
    """An INSERT with on_conflict_do_nothing() / on_conflict_do_update() for this dialect.

    Used for insert-if-absent: unlike "SELECT, then INSERT if missing" it cannot race another
    transaction (or process) into a unique-key error.
    """
    if dialect_name == "postgresql":
        # Imported here: SQLAlchemy's PostgreSQL dialects (~2 MB) stay out of a bot on SQLite.
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for dialect {dialect_name!r}")


def name_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def utc_day(dialect_name: str, column: Any) -> Any:
    """The UTC calendar day of a UTCDateTime column, for GROUP BY.

    SQLite holds naive UTC text, so date() is already the UTC day. PostgreSQL's date() of a
    timestamptz uses the session's TimeZone, which need not be UTC: convert first.
    """
    if dialect_name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)
