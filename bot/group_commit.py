"""Small writes of many answers at once, made in one transaction.

When a burst of answers finishes, each would write its own small row (which Telegram messages
show it) in a transaction of its own, queued behind the others on SQLite's one writer. Here a write
that finds another under way waits for it, and the next transaction takes every write that queued
meanwhile. Alone, a write goes out at once; a caller returns once its item is written, or gets
the error of the batch it was in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class GroupCommit(Generic[Item]):
    def __init__(self, write: Callable[[list[Item]], Awaitable[None]]) -> None:
        self._write = write
        self._queued: list[tuple[Item, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(self, item: Item) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="group-commit")
        await asyncio.shield(done)  # a caller that gives up does not cancel the others' write

    async def _write_queued(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                await self._write([item for item, _ in batch])
            except Exception as error:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
