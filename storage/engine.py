"""Engine creation for SQLite (aiosqlite) and PostgreSQL (asyncpg) from one DATABASE_URL.

SQLite needs three things to take concurrent writers from several processes:
- WAL, so readers never block the writer and the writer never blocks readers;
- a long busy timeout, so a writer waits for the lock instead of failing with
  "database is locked";
- BEGIN IMMEDIATE for write transactions. sqlite3's default ("legacy") transaction control
  starts a deferred transaction; when such a transaction reads first and writes later, SQLite
  cannot wait for the lock (that could deadlock) and fails at once, busy timeout or not. So the
  driver's own BEGIN is switched off and we emit ours: IMMEDIATE takes the write lock up front,
  where the busy timeout applies. Read-only transactions keep a plain (deferred) BEGIN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from storage.tables import describe_for_postgresql

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/bot.db"  # relative to the working directory
SQLITE_BUSY_TIMEOUT_MS = 30_000

# Execution option that marks an engine's transactions as writes (see write_engine).
_WRITE_OPTION = "kimi_write_transaction"

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",  # the form Heroku-style hosts hand out
    "postgresql": "postgresql+asyncpg",
}


def normalise_url(database_url: str | URL) -> URL:
    """Give a bare sqlite:// or postgresql:// URL its async driver; refuse in-memory SQLite."""
    url = make_url(database_url)
    url = url.set(drivername=_DRIVERS.get(url.drivername, url.drivername))
    if url.get_backend_name() == "sqlite" and _is_memory(url):
        # An in-memory database lives in one shared connection: concurrent sessions would share
        # one transaction, and the budget guarantees would be void. Use a file (tests: tmp_path).
        raise ValueError("in-memory SQLite is not supported; give a file path in DATABASE_URL")
    return url


def _is_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database or (url.query.get("mode") == "memory")


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL (relative paths are relative to the cwd), else None."""
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    database = url.database
    if database.startswith("file:"):  # uri=true form
        database = database[len("file:") :].split("?", 1)[0]
    return Path(database)


def create_engine(
    database_url: str | URL, *, echo: bool = False, for_migrations: bool = False
) -> AsyncEngine:
    """An engine for the store, or (for_migrations) a pool-less one for Alembic.

    SQLite migrations must run with foreign keys off: a batch migration rebuilds a table by
    copying it and dropping the original, and with foreign keys on, DROP TABLE first deletes
    every row, so ON DELETE CASCADE would silently empty the child tables (messages of a
    rebuilt conversations table). The pragma cannot change inside a transaction, hence a
    separate engine whose connections are opened with it off; env.py runs
    PRAGMA foreign_key_check before committing instead.
    """
    url = normalise_url(database_url)
    pool_args: dict[str, Any] = {"poolclass": NullPool} if for_migrations else {}
    if url.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, **pool_args)
        _install_sqlite_hooks(engine, foreign_keys=not for_migrations)
        return engine
    if url.get_backend_name() == "postgresql":
        describe_for_postgresql()
    # pre-ping: a PostgreSQL restart or an idle-connection reaper must not fail the next turn.
    return create_async_engine(url, echo=echo, pool_pre_ping=True, **pool_args)


def write_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, with transactions marked as writes (BEGIN IMMEDIATE on SQLite)."""
    return engine.execution_options(**{_WRITE_OPTION: True})


def _install_sqlite_hooks(engine: AsyncEngine, *, foreign_keys: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # None = the driver never emits BEGIN itself; _on_begin below does.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        # NORMAL is durable across application crashes in WAL mode (only a power cut may lose
        # the last commits) and avoids an fsync per commit.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(_WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")
