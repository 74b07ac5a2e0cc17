"""Database fixtures any test can use: a started Store on a temporary SQLite file, and a fresh
PostgreSQL database when one can be had (else the test is skipped, with the reason shown).

Enable them for the whole suite with, in tests/conftest.py:

    pytest_plugins = ["tests.db_fixtures"]

Fixtures:
    sqlite_url   URL of an empty SQLite file in tmp_path
    store        a started Store on sqlite_url (closed afterwards), the file a copy of a migrated one
    migrated_sqlite_url  sqlite_url with the file a copy of a migrated template (see below)
    pg_url       URL of an empty, throwaway PostgreSQL database (dropped afterwards)
    migrated_pg_url  like pg_url, but created from a migrated template database
    pg_store     a started Store on PostgreSQL, its tables emptied before the test (one migrated
                 database serves the whole run: CREATE DATABASE costs ~0.3 s a test)
    any_store    parametrised: the same test on SQLite and on PostgreSQL

Migrated templates: a start on a fresh database runs every migration (Alembic, ~1 s of CPU), and
hundreds of tests start the bot. So each test process migrates one SQLite file and one PostgreSQL
database once (per xdist worker: no two workers share one, so none waits for or races another),
and the migrated_* fixtures hand out copies (a file copy; CREATE DATABASE ... TEMPLATE). A start
on such a copy finds the schema at head and skips the migrations, as a restart in production
does. The migrations themselves are tested on empty databases (tests/test_storage_migrations.py),
and the bots started by bot_settings' default URL and by tests/bot_process.py still migrate.

Where PostgreSQL comes from, in order:
    1. TEST_DATABASE_URL (a server where we may CREATE DATABASE, or else a database we may wipe);
    2. the local server (127.0.0.1:5432, user postgres, trust auth or the password "postgres"),
       started with pg_ctlcluster if it is installed but stopped. `.ci/postgres.sh` installs,
       starts and configures it on a fresh Debian/Ubuntu machine.

With CI=true an unusable PostgreSQL fails the PostgreSQL tests instead of skipping them: CI must
never turn green with the PostgreSQL half (budget atomicity across processes) unguarded.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy.engine import URL, make_url

from storage import Store
from storage.engine import normalise_url
from storage.migrate import upgrade

LOCAL_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
# The password .ci/postgres.sh gives the postgres role when the server wants one over TCP.
LOCAL_PG_PASSWORD = "postgres"
_CONNECT_TIMEOUT = 3.0


@dataclass(frozen=True)
class PgServer:
    url: URL  # a database to connect to for CREATE/DROP DATABASE, or the one to use
    can_create_databases: bool


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head, once per test process (its own temporary folder)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    assert not Path(f"{path}-wal").exists()  # all in the file: closing checkpointed the WAL
    return path


def migrated_sqlite_copy(template: Path, url: str) -> str:
    """Put a copy of the migrated template where the SQLite `url` points; return the url."""
    target = Path(normalise_url(url).database or "")
    assert not target.exists(), f"{target} exists already"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return url


@pytest.fixture
def migrated_sqlite_url(sqlite_url: str, sqlite_template: Path) -> str:
    return migrated_sqlite_copy(sqlite_template, sqlite_url)


@pytest.fixture
async def store(migrated_sqlite_url: str) -> AsyncIterator[Store]:
    started = Store(migrated_sqlite_url)
    await started.start()
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture(scope="session")
def pg_server() -> PgServer:
    """Find (or start) a PostgreSQL server once per run; skip PostgreSQL tests without one."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        url = _asyncpg_url(given)
        error = asyncio.run(_probe(url))
        if error:
            _no_postgres(f"TEST_DATABASE_URL is set but unusable: {error}")
        can_create = asyncio.run(_probe_create(url))
        return PgServer(url, can_create)

    url = make_url(LOCAL_PG_URL)
    error = asyncio.run(_probe_local(url))
    if error:
        started = _start_local_cluster()
        if started:
            error = asyncio.run(_wait_until_up(url))
        else:
            error = f"{error}; and no cluster could be started (pg_ctlcluster missing or failed)"
    if error:
        _no_postgres(
            f"no PostgreSQL for the PostgreSQL tests: {error} (run .ci/postgres.sh or set TEST_DATABASE_URL)"
        )
    if asyncio.run(_probe(url)) is not None:
        url = url.set(password=LOCAL_PG_PASSWORD)
    return PgServer(url, can_create_databases=True)


def _no_postgres(reason: str) -> NoReturn:
    """Skip the PostgreSQL tests, or fail them in CI (CI=true), where skipping hides a gap."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
async def pg_url(pg_server: PgServer) -> AsyncIterator[str]:
    """An empty database for this test (a fresh kimi_test_* database, dropped afterwards)."""
    import asyncpg

    if not pg_server.can_create_databases:
        await _wipe(pg_server.url)
        yield pg_server.url.render_as_string(hide_password=False)
        return
    name = f"kimi_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(**_asyncpg_args(pg_server.url), timeout=_CONNECT_TIMEOUT)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield pg_server.url.set(database=name).render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def pg_template(pg_server: PgServer) -> Iterator[str | None]:
    """The name of a database migrated to head, once per test process (None where we may not
    create databases: migrated_pg_url then migrates its one database itself)."""
    if not pg_server.can_create_databases:
        yield None
        return
    name = f"kimi_template_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(pg_server.url, f'CREATE DATABASE "{name}"'))
    try:
        asyncio.run(upgrade(pg_server.url.set(database=name).render_as_string(hide_password=False)))
        yield name
    finally:
        asyncio.run(_admin(pg_server.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def migrated_pg_url(pg_server: PgServer, pg_template: str | None) -> AsyncIterator[str]:
    """A fresh database at head: a copy of pg_template (dropped afterwards)."""
    if pg_template is None:
        await _wipe(pg_server.url)
        url = pg_server.url.render_as_string(hide_password=False)
        await upgrade(url)
        yield url
        return
    name = f"kimi_test_{uuid.uuid4().hex[:12]}"
    await _admin(pg_server.url, f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        yield pg_server.url.set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(pg_server.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(url: URL, statement: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(**_asyncpg_args(url), timeout=_CONNECT_TIMEOUT)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def pg_shared_url(pg_server: PgServer) -> Iterator[str]:
    """One database for the run, migrated to head; pg_store empties it before each test."""
    import asyncpg

    async def create(name: str) -> None:
        admin = await asyncpg.connect(**_asyncpg_args(pg_server.url), timeout=_CONNECT_TIMEOUT)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    async def drop(name: str) -> None:
        admin = await asyncpg.connect(**_asyncpg_args(pg_server.url), timeout=_CONNECT_TIMEOUT)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    if pg_server.can_create_databases:
        name = f"kimi_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(create(name))
        url = pg_server.url.set(database=name).render_as_string(hide_password=False)
    else:
        name = ""
        asyncio.run(_wipe(pg_server.url))
        url = pg_server.url.render_as_string(hide_password=False)
    try:
        asyncio.run(upgrade(url))
        yield url
    finally:
        if name:
            asyncio.run(drop(name))


@pytest.fixture
async def pg_store(pg_shared_url: str) -> AsyncIterator[Store]:
    await _empty_tables(make_url(pg_shared_url))
    started = Store(pg_shared_url)
    await started.start()
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest) -> Store:
    """A started Store on each backend in turn (the PostgreSQL run skips without a server).

    Sync on purpose: it resolves an async fixture by name, which must happen outside the loop.
    """
    fixture = "store" if request.param == "sqlite" else "pg_store"
    return request.getfixturevalue(fixture)


def _asyncpg_url(url: str) -> URL:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg")


def _asyncpg_args(url: URL) -> dict[str, object]:
    return {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password,
        "database": url.database or "postgres",
    }


async def _probe(url: URL) -> str | None:
    try:
        import asyncpg
    except ImportError:
        return "asyncpg is not installed (pip install .[postgres])"
    try:
        connection = await asyncpg.connect(**_asyncpg_args(url), timeout=_CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        return f"cannot connect to {url.render_as_string()}: {error}"
    await connection.close()
    return None


async def _probe_create(url: URL) -> bool:
    import asyncpg

    connection = await asyncpg.connect(**_asyncpg_args(url), timeout=_CONNECT_TIMEOUT)
    try:
        return bool(
            await connection.fetchval(
                "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
            )
        )
    finally:
        await connection.close()


async def _probe_local(url: URL) -> str | None:
    """The local server without a password (trust), else with .ci/postgres.sh's password."""
    error = await _probe(url)
    if error is None or await _probe(url.set(password=LOCAL_PG_PASSWORD)) is None:
        return None
    return error


async def _wait_until_up(url: URL, attempts: int = 20) -> str | None:
    error: str | None = None
    for _ in range(attempts):
        error = await _probe_local(url)
        if error is None:
            return None
        await asyncio.sleep(0.25)
    return error


def _start_local_cluster() -> bool:
    """pg_ctlcluster start for the installed version (Debian/Ubuntu packaging)."""
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return False
    versions = sorted(
        (entry.name for entry in Path("/etc/postgresql").iterdir() if entry.name.isdigit()),
        key=int,
    )
    for version in reversed(versions):
        command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]
        result = subprocess.run(command, capture_output=True, timeout=60, check=False)
        if result.returncode == 0:
            return True
    return False


async def _empty_tables(url: URL) -> None:
    import asyncpg

    connection = await asyncpg.connect(**_asyncpg_args(url), timeout=_CONNECT_TIMEOUT)
    try:
        names = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        tables = ", ".join(f'"{row["tablename"]}"' for row in names)
        if tables:
            await connection.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


async def _wipe(url: URL) -> None:
    """Empty a database we may not recreate: drop the schema's tables (ours and Alembic's)."""
    import asyncpg

    connection = await asyncpg.connect(**_asyncpg_args(url), timeout=_CONNECT_TIMEOUT)
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await connection.close()
