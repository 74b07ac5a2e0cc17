"""Which updates the bot has finished handling: a per-update signal, exact under concurrency.

Updates are handled concurrently (one user's long answer must not hold up anyone else), so "the
bot answered a later message" or "the bot was quiet for a while" proves nothing about an earlier
update. This records each update id once its whole handler pipeline (every handler group and the
error handler) has returned, so a caller — an operator reading the debug log, a test asserting
that something did *not* happen — can wait for exactly the updates it cares about.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import Any

from telegram import Update
from telegram.ext import SimpleUpdateProcessor

log = logging.getLogger(__name__)

# Updates handled at once. A handler lives as long as its answer streams, so PTB's default (256)
# made the 257th user of a burst wait for whole answers before even a sign of life (bench.load,
# 400 users: 60 s). A waiting handler costs a coroutine and a few KB, and the bot's real limits
# (Kimi's slots, Telegram's flood limits, the budget) apply inside the handler.
MAX_CONCURRENT_UPDATES = 4096


class HandledUpdates:
    """The ids of the updates whose handling has finished (successfully or with an error)."""

    def __init__(self) -> None:
        self._done: set[int] = set()
        self._changed = asyncio.Event()

    def __contains__(self, update_id: object) -> bool:
        return update_id in self._done

    def __len__(self) -> int:
        return len(self._done)

    def mark(self, update_id: int) -> None:
        self._done.add(update_id)
        log.debug("update %d handled", update_id)
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, update_ids: Iterable[int]) -> None:
        """Return once every one of ``update_ids`` has been handled (callers bound it with a timeout)."""
        wanted = set(update_ids)
        while not wanted <= self._done:
            await self._changed.wait()


class TrackingUpdateProcessor(SimpleUpdateProcessor):
    """PTB's concurrent processor that also marks each update handled when its pipeline returns."""

    def __init__(self, handled: HandledUpdates, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES):
        super().__init__(max_concurrent_updates)
        self._handled = handled

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        try:
            await coroutine
        finally:
            # An exception here already went through the error handler; it still counts as handled.
            if isinstance(update, Update):
                self._handled.mark(update.update_id)
