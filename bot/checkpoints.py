"""Checkpoints of the answers while they stream, so that a crash loses at most a moment of them.

Each turn's hold was recorded with the turn (chat, user, question); every CHECKPOINT_SECONDS the
text each streaming answer has written so far is saved beside it, off the streaming path (a stream
never waits for the database). One writer serves all answers of the process and saves every
changed answer in one transaction: 400 answers streaming at once cost one write every 2 s, not
200 a second. If the process dies, the next start-up finds the rows, charges what the checkpoints
show, stores them and tells the users (bot.recovery).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from storage import Checkpoint, Reservation, Store

log = logging.getLogger(__name__)

# Often enough to keep nearly all of an answer; the writes are batched, so the count of answers
# streaming at once does not change how often the database is written.
CHECKPOINT_SECONDS = 2.0

Written = Callable[[], tuple[str, str]]


class Checkpoints:
    """`async with checkpoints.watching(reservation, written):` saves `written()` -> (content,
    reasoning) every CHECKPOINT_SECONDS while it changes, together with every other answer's."""

    def __init__(self, store: Store, interval: float = CHECKPOINT_SECONDS) -> None:
        self._store = store
        self._interval = interval
        self._watched: dict[int, tuple[Written, tuple[str, str]]] = {}  # by reservation id
        self._task: asyncio.Task[None] | None = None

    @property
    def watched(self) -> int:
        return len(self._watched)

    @contextlib.asynccontextmanager
    async def watching(self, reservation: Reservation, written: Written) -> AsyncIterator[None]:
        self._watched[reservation.id] = (written, ("", ""))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="checkpoints")
        try:
            yield
        finally:
            # Its row ends with the settle; a batch already under way may still write to it (the
            # write skips settled and removed rows).
            self._watched.pop(reservation.id, None)

    async def _run(self) -> None:
        while self._watched:
            await asyncio.sleep(self._interval)
            await self.save_changed()

    async def save_changed(self) -> None:
        """Save, in one transaction, every watched answer whose text changed since its last save."""
        batch: list[Checkpoint] = []
        for reservation_id, (written, saved) in list(self._watched.items()):
            now = written()
            if now != saved:
                batch.append(Checkpoint(reservation_id, *now))
        if not batch:
            return
        try:
            await self._store.checkpoint_many(batch)
        except Exception as error:  # a missed checkpoint only costs what a crash would lose
            log.warning("could not checkpoint %d answers: %s", len(batch), type(error).__name__)
            return
        for item in batch:
            if (entry := self._watched.get(item.reservation_id)) is not None:
                self._watched[item.reservation_id] = (entry[0], (item.content, item.reasoning))
