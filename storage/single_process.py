"""SQLite serves one bot process: a second one on the same file is refused at start-up.

Turn order, stop buttons and flood pacing live in the process's memory with SQLite; a second
process would answer the same chats out of order and past Telegram's limits. An exclusive flock on
`<database>.lock` (dropped by the kernel when the process dies, however it dies) says whether one
already runs. Several processes need PostgreSQL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import URL

from storage.engine import normalise_url, sqlite_file


class DatabaseInUse(RuntimeError):
    pass


class SingleProcessLock:
    def __init__(self, database_url: str | URL) -> None:
        self._path: Path | None = None
        database = sqlite_file(normalise_url(database_url))
        if database is not None:
            self._path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._path is None:
            return  # PostgreSQL: any number of replicas
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatabaseInUse(
                f"another bot process is already running on the SQLite database "
                f"{self._path.with_suffix('')}; "
                "SQLite serves one process. Stop the other one, or use PostgreSQL "
                "(DATABASE_URL=postgresql+asyncpg://…) to run several replicas"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
