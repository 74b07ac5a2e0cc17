"""A throwaway PostgreSQL database on the local server for a benchmark, or the reason there is none.

The server is the local one (127.0.0.1:5432, user postgres, trust auth) unless
BENCH_POSTGRES_URL names another; the database is created fresh and dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import URL, make_url

LOCAL_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT = 3.0


class NoPostgres(RuntimeError):
    """No PostgreSQL to benchmark against; str() says why."""


def _connect_args(url: URL) -> dict[str, object]:
    return {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password,
        "database": url.database or "postgres",
        "timeout": CONNECT_TIMEOUT,
    }


@asynccontextmanager
async def throwaway_postgres() -> AsyncIterator[str]:
    """The URL of a fresh, empty database, dropped on exit. Raises NoPostgres(reason)."""
    try:
        import asyncpg
    except ImportError as error:
        raise NoPostgres("asyncpg is not installed (pip install -e '.[postgres]')") from error
    server = make_url(os.environ.get("BENCH_POSTGRES_URL", LOCAL_POSTGRES_URL))
    try:
        admin = await asyncpg.connect(**_connect_args(server))
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        raise NoPostgres(f"cannot connect to {server.render_as_string()}: {error}") from error
    name = f"kimi_bench_{uuid.uuid4().hex[:12]}"
    try:
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.PostgresError as error:
            raise NoPostgres(f"cannot create a database on {server.render_as_string()}: {error}") from error
        try:
            yield server.set(drivername="postgresql+asyncpg", database=name).render_as_string(
                hide_password=False
            )
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
