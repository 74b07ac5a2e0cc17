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


# Finished update ids remembered one by one; older ones are summed up by a floor (HandledUpdates).
KEPT_IDS = 4096


class HandledUpdates:
    """The ids of the updates whose handling has finished (successfully or with an error).

    Only the last `keep` finished ids are kept one by one, so memory does not grow with every
    update ever handled: an older id counts as handled if it is at or below the highest id
    forgotten and is not being handled still. Updates start in the order of their ids (polling
    hands them over in order, the processor's semaphore admits them first come, first served; a
    webhook retry of an old one is dropped before it), so by the time an id is forgotten every
    lower one has long started."""

    def __init__(self, keep: int = KEPT_IDS) -> None:
        self._keep = keep
        self._done: dict[int, None] = {}  # in the order they finished
        self._handling: set[int] = set()
        self._forgotten_up_to: int | None = None
        self._count = 0
        self._changed = asyncio.Event()

    def __contains__(self, update_id: object) -> bool:
        if update_id in self._done:
            return True
        floor = self._forgotten_up_to
        return (
            isinstance(update_id, int)
            and floor is not None
            and update_id <= floor
            and update_id not in self._handling
        )

    def __len__(self) -> int:
        """How many updates have been handled."""
        return self._count

    @property
    def kept(self) -> int:
        """Ids remembered one by one (for tests: it must not grow without bound)."""
        return len(self._done) + len(self._handling)

    def started(self, update_id: int) -> None:
        self._handling.add(update_id)

    def mark(self, update_id: int) -> None:
        self._handling.discard(update_id)
        self._done[update_id] = None
        self._count += 1
        if len(self._done) > self._keep:
            oldest = next(iter(self._done))
            del self._done[oldest]
            floor = self._forgotten_up_to
            self._forgotten_up_to = oldest if floor is None else max(floor, oldest)
        log.debug("update %d handled", update_id)
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, update_ids: Iterable[int]) -> None:
        """Return once every one of ``update_ids`` has been handled (callers bound it with a timeout)."""
        wanted = set(update_ids)
        while wanted := {update_id for update_id in wanted if update_id not in self}:
            await self._changed.wait()


class TrackingUpdateProcessor(SimpleUpdateProcessor):
    """PTB's concurrent processor that also marks each update handled when its pipeline returns."""

    def __init__(self, handled: HandledUpdates, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES):
        super().__init__(max_concurrent_updates)
        self._handled = handled

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if isinstance(update, Update):
            self._handled.started(update.update_id)
        try:
            await coroutine
        finally:
            # An exception here already went through the error handler; it still counts as handled.
            if isinstance(update, Update):
                self._handled.mark(update.update_id)
