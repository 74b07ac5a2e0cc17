"""Checkpoints of an answer while it streams, so that a crash loses at most a moment of it.

The turn's hold was recorded with the turn (chat, user, question); every CHECKPOINT_SECONDS the
text written so far is saved beside it, off the streaming path (the stream never waits for the
database). If the process dies, the next start-up finds the row, charges what the checkpoint
shows, stores it and tells the user (bot.recovery).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from storage import Reservation, Store

log = logging.getLogger(__name__)

# Often enough to keep nearly all of an answer, rarely enough that 40 streaming answers cost
# SQLite about 20 small writes a second.
CHECKPOINT_SECONDS = 2.0


class Checkpointer:
    """`async with Checkpointer(store, reservation, written):` saves `written()` -> (content,
    reasoning) every CHECKPOINT_SECONDS while it changes."""

    def __init__(
        self,
        store: Store,
        reservation: Reservation,
        written: Callable[[], tuple[str, str]],
        interval: float = CHECKPOINT_SECONDS,
    ) -> None:
        self._store = store
        self._reservation = reservation
        self._written = written
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Checkpointer:
        self._task = asyncio.create_task(self._run(), name=f"checkpoint-{self._reservation.id}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        saved = ("", "")
        while True:
            await asyncio.sleep(self._interval)
            written = self._written()
            if written == saved:
                continue
            try:
                await self._store.checkpoint(self._reservation, *written)
            except Exception as error:  # a missed checkpoint only costs what a crash would lose
                log.warning("could not checkpoint an answer: %s", type(error).__name__)
                continue
            saved = written
