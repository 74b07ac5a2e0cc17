"""Which bot processes are alive, as the database (or its host) knows it; no timeouts, no guesses.

Each process picks an owner key when its store starts and holds a lock named by it for as long as
it runs: on PostgreSQL a session-level advisory lock on a dedicated connection, on SQLite an
exclusive flock on a file beside the database. The operating system or the database server drops
the lock when the process dies, however it dies (SIGKILL, OOM, power cut of a replica), so
"can I take owner X's lock?" answers "is X dead?". Rows that belong to a process (budget holds,
in-flight turns, pending deliveries) carry its key; at start-up, rows of dead owners are taken
over. Several replicas on one PostgreSQL (issue 12) use the same piece.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.engine import sqlite_file

log = logging.getLogger(__name__)

# PostgreSQL's two-key advisory locks: this first key ("KIMI") keeps ours apart from any other
# user of advisory locks in the same database.
PG_LOCK_SPACE = 0x4B494D49
MAX_OWNER_KEY = 2**31 - 1  # the second key is a PostgreSQL int4


def new_owner_key() -> int:
    return secrets.randbelow(MAX_OWNER_KEY) + 1


class ProcessLiveness(ABC):
    """This process's owner key (held while it runs), and a way to tell whether another's died."""

    key: int

    @abstractmethod
    async def start(self) -> None:
        """Pick a key no live process holds, and hold it."""

    @abstractmethod
    async def close(self) -> None:
        """Let the key go (the process is stopping cleanly)."""

    @abstractmethod
    def if_dead(self, owner: int) -> contextlib.AbstractAsyncContextManager[bool]:
        """`async with liveness.if_dead(owner) as dead:` True when `owner` is not running. While
        the block runs, that owner's lock is ours, so that two processes starting together do
        not both take over its rows (the second sees it as alive and leaves it)."""


# How often the PostgreSQL lock's session is checked: a dropped connection or a restarted server
# loses the lock without a word, and until it is taken again a starting replica would take this
# live process for dead and take over its holds and answers.
WATCH_SECONDS = 5.0


class PostgresLiveness(ProcessLiveness):
    def __init__(self, engine: AsyncEngine, watch_seconds: float | None = None) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the one connection
        self._watch_seconds = WATCH_SECONDS if watch_seconds is None else watch_seconds
        self._watch: asyncio.Task[None] | None = None
        self.key = 0
        self.regained = 0  # how often the lock was found lost and taken again
        self.taken_again = asyncio.Event()  # set once it was (for the log's reader: tests)

    async def start(self) -> None:
        # A connection of its own for the whole run: the lock lives and dies with its session.
        self._connection = await self._engine.connect()
        for _ in range(8):
            key = new_owner_key()
            if await self._try_lock(key):
                self.key = key
                self._watch = asyncio.create_task(self._keep_holding(), name="liveness-watch")
                return
        raise RuntimeError("could not pick a free process key")

    async def _keep_holding(self) -> None:
        while True:
            await asyncio.sleep(self._watch_seconds)
            try:
                held = await self.holds_key()
            except Exception:  # the connection is gone: so is the lock
                held = False
            if not held:
                await self._take_again()

    async def holds_key(self) -> bool:
        """Whether this process's session still holds its lock."""
        statement = (
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid() AND classid::bigint = :space AND objid::bigint = :key)"
        )
        return bool(await self._run(statement, self.key))

    async def _take_again(self) -> None:
        log.warning(
            "this process's liveness lock was lost (connection to PostgreSQL dropped); taking it again"
        )
        async with self._lock:
            if self._connection is not None:
                with contextlib.suppress(Exception):
                    await self._connection.invalidate()
            try:
                self._connection = await self._engine.connect()
            except Exception as error:
                self._connection = None
                log.error("cannot reconnect to take the liveness lock again: %s", type(error).__name__)
                return
        try:
            taken = await self._try_lock(self.key)
        except Exception as error:
            log.error("cannot take the liveness lock again: %s", type(error).__name__)
            return
        if taken:
            self.regained += 1
            self.taken_again.set()
        else:
            # Another process holds our key: it is taking over our rows right now; we try again
            # at the next check, and our own settles still settle what it released.
            log.error("another process holds this process's liveness key; its rows may be taken over")

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self._connection is not None:
            with contextlib.suppress(Exception):
                # Invalidate, not just close: a pooled connection would keep the session (and
                # the lock) alive in the pool.
                await self._connection.invalidate()
                await self._connection.close()
            self._connection = None

    @contextlib.asynccontextmanager
    async def if_dead(self, owner: int) -> AsyncIterator[bool]:
        if owner == self.key:
            yield False
            return
        taken = await self._try_lock(owner)
        try:
            yield taken
        finally:
            if taken:
                await self._run("SELECT pg_advisory_unlock(:space, :key)", owner)

    async def _try_lock(self, key: int) -> bool:
        return bool(await self._run("SELECT pg_try_advisory_lock(:space, :key)", key))

    async def _run(self, statement: str, key: int) -> object:
        async with self._lock:
            if self._connection is None:
                raise ConnectionError("no connection to PostgreSQL for the liveness lock")
            result = await self._connection.execute(text(statement), {"space": PG_LOCK_SPACE, "key": key})
            value = result.scalar()
            await self._connection.commit()  # session-level locks outlive the transaction
            return value


class FileLockLiveness(ProcessLiveness):
    """For SQLite: one lock file per process in `<database>.owners/`, flock-ed while it runs.

    flock (not fcntl/lockf) because its locks belong to the open file, not the process: a second
    store in the same process (tests run several bots in one) sees the first as alive too."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._fd: int | None = None
        self.key = 0

    async def start(self) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        for _ in range(8):
            key = new_owner_key()
            fd = self._lock_file(key)
            if fd is not None:
                self._fd, self.key = fd, key
                return
        raise RuntimeError("could not pick a free process key")

    async def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self._path(self.key).unlink()
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    @contextlib.asynccontextmanager
    async def if_dead(self, owner: int) -> AsyncIterator[bool]:
        if owner == self.key:
            yield False
            return
        fd = self._lock_file(owner)
        if fd is None:
            yield False
            return
        try:
            yield True
        finally:
            with contextlib.suppress(OSError):
                self._path(owner).unlink()
            os.close(fd)

    def _path(self, key: int) -> Path:
        return self._folder / f"{key}.lock"

    def _lock_file(self, key: int) -> int | None:
        """The file's descriptor, locked; None if a live process holds it."""
        fd = os.open(self._path(key), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd


def liveness_for(url: URL, engine: AsyncEngine) -> ProcessLiveness:
    path = sqlite_file(url)
    if path is not None:
        return FileLockLiveness(path.with_name(path.name + ".owners"))
    return PostgresLiveness(engine)
