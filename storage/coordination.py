"""What replicas share through the database: `Coordination` is the one entry to it.

On PostgreSQL it also keeps one connection open for LISTEN (stop signals, turn queues moving). The
rows this replica writes carry the store's owner key (storage.liveness), by which the others tell
whether it is still alive. On SQLite there is one process (a second one is refused at start-up),
and nothing listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from storage import replicas
from storage.store import Store
from storage.utc import utc_now

log = logging.getLogger(__name__)

# A retried delivery comes within minutes; a day of claimed updates is plenty to dedupe against.
UPDATE_MEMORY = timedelta(hours=24)
PRUNE_EVERY_SECONDS = 600.0
LISTEN_CHECK_SECONDS = 5.0


class Coordination:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.shared = store.database_url.get_backend_name() == "postgresql"
        self.owner = store.owner  # storage.liveness's key, held while this process runs
        self._listener: Any = None  # asyncpg connection
        self._turn_waiters: dict[int, set[asyncio.Event]] = {}
        self._stop_handlers: list[Callable[[str], None]] = []
        self._access_handlers: list[Callable[[], None]] = []
        self._pruner: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.shared:
            await self._listen()
            self._watchdog = asyncio.create_task(self._keep_listening())
        self._pruner = asyncio.create_task(self._prune_forever())

    async def _listen(self) -> None:
        import asyncpg  # type: ignore[import-untyped]  # the postgres extra; no type hints

        url = self._store.database_url.set(drivername="postgresql")
        self._listener = await asyncpg.connect(url.render_as_string(hide_password=False))
        await self._listener.add_listener(replicas.TURNS_CHANNEL, self._on_turns)
        await self._listener.add_listener(replicas.STOP_CHANNEL, self._on_stop)
        await self._listener.add_listener(replicas.ACCESS_CHANNEL, self._on_access)

    async def _keep_listening(self) -> None:
        """Re-open the LISTEN connection when it drops (a PostgreSQL restart, a network cut).

        Meanwhile waiting turns still look again every few seconds; a stop sent in the gap is lost
        (the user presses again)."""
        while True:
            await asyncio.sleep(LISTEN_CHECK_SECONDS)
            if self._listener is not None and not self._listener.is_closed():
                continue
            try:
                await self._listen()
            except Exception as error:
                log.warning("LISTEN connection lost; retrying: %s", type(error).__name__)
                continue
            log.info("LISTEN connection re-opened")
            for waiters in self._turn_waiters.values():  # look again: a turn may have ended
                for event in waiters:
                    event.set()
            for handler in self._access_handlers:  # a change may have been missed meanwhile
                handler()

    @property
    def listening(self) -> bool:
        """PostgreSQL: whether this replica hears the others (for /healthz)."""
        return not self.shared or (self._listener is not None and not self._listener.is_closed())

    async def close(self) -> None:
        for task in (self._watchdog, self._pruner):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    # --- notifications ------------------------------------------------------------------------

    def _on_turns(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            for event in self._turn_waiters.get(int(payload), ()):
                event.set()

    def _on_stop(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        for handler in self._stop_handlers:
            handler(payload)

    def _on_access(self, _connection: Any, _pid: int, _channel: str, _payload: str) -> None:
        for handler in self._access_handlers:
            handler()

    def on_access_change(self, handler: Callable[[], None]) -> None:
        """`handler()` runs when an admin on any replica (this one too) allowed or denied a user."""
        self._access_handlers.append(handler)

    def on_stop_signal(self, handler: Callable[[str], None]) -> None:
        """`handler(token)` runs when any replica asks to stop an answer (ours or not)."""
        self._stop_handlers.append(handler)

    def turn_waiter(self, chat_id: int) -> asyncio.Event:
        """An event set when a turn of the chat finishes on any replica (register before looking)."""
        event = asyncio.Event()
        self._turn_waiters.setdefault(chat_id, set()).add(event)
        return event

    def drop_turn_waiter(self, chat_id: int, event: asyncio.Event) -> None:
        waiters = self._turn_waiters.get(chat_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._turn_waiters[chat_id]

    # --- updates ------------------------------------------------------------------------------

    async def claim_update(self, update_id: int, chat_id: int | None) -> int | None:
        async with self._store._writing() as session:
            return await replicas.claim_update(session, update_id, chat_id, self.owner)

    async def set_turn_key(self, seq: int, turn_key: str) -> None:
        async with self._store._writing() as session:
            await replicas.set_turn_key(session, seq, turn_key)

    async def finish_update(self, seq: int, chat_id: int | None) -> None:
        async with self._store._writing() as session:
            await replicas.finish_update(session, seq, chat_id)
        if not self.shared and chat_id is not None:
            self._on_turns(None, 0, "", str(chat_id))

    async def turn_is_blocked(self, seq: int, chat_id: int, turn_key: str) -> bool:
        async with self._store._reading() as session:
            return await replicas.turn_is_blocked(session, seq, chat_id, turn_key)

    async def key_turn_and_check(self, seq: int, chat_id: int, turn_key: str) -> bool:
        """set_turn_key and a first turn_is_blocked in one transaction (one round of the pool)."""
        async with self._store._writing() as session:
            await replicas.set_turn_key(session, seq, turn_key)
            return await replicas.turn_is_blocked(session, seq, chat_id, turn_key)

    # --- answers being streamed ---------------------------------------------------------------

    async def add_active(self, token: str, chat_id: int, user_id: int) -> None:
        async with self._store._writing() as session:
            await replicas.add_active(session, token, chat_id, user_id, self.owner)

    async def remove_active(self, token: str) -> None:
        async with self._store._writing() as session:
            await replicas.remove_active(session, token)

    async def active_answer(self, token: str) -> tuple[int, int] | None:
        async with self._store._reading() as session:
            return await replicas.active_answer(session, token)

    async def active_tokens(self, chat_id: int, user_id: int) -> list[str]:
        async with self._store._reading() as session:
            return await replicas.active_tokens(session, chat_id, user_id)

    async def signal_stop(self, token: str) -> None:
        if not self.shared:
            self._on_stop(None, 0, "", token)
            return
        async with self._store._writing() as session:
            await replicas.notify_stop(session, token)

    # --- pending confirmations ----------------------------------------------------------------

    async def save_pending(self, token: str, user_id: int, payload: dict[str, Any]) -> None:
        async with self._store._writing() as session:
            await replicas.save_pending(session, token, user_id, payload)

    async def pending(self, token: str, ttl_seconds: float) -> tuple[int, dict[str, Any]] | None:
        async with self._store._reading() as session:
            return await replicas.pending(session, token, utc_now() - timedelta(seconds=ttl_seconds))

    async def take_pending(self, token: str) -> bool:
        async with self._store._writing() as session:
            return await replicas.take_pending(session, token)

    # --- flood slots --------------------------------------------------------------------------

    async def take_flood_slot(self, chat_id: int, **limits: Any) -> tuple[int | None, float]:
        async with self._store._writing() as session:
            return await replicas.take_flood_slot(session, chat_id, **limits)

    async def flood_slot_landed(self, slot_id: int) -> None:
        async with self._store._writing() as session:
            await replicas.flood_slot_landed(session, slot_id)

    # --- housekeeping -------------------------------------------------------------------------

    async def _prune_forever(self) -> None:
        while True:
            try:
                async with self._store._writing() as session:
                    await replicas.prune_updates(session, utc_now() - UPDATE_MEMORY)
                    await replicas.prune_pending(session, utc_now() - timedelta(days=1))
                    await replicas.prune_dead_active(session)
                    if self.shared:
                        await replicas.prune_flood_slots(session, 120.0)
            except Exception as error:  # housekeeping must never stop the bot
                log.warning("pruning shared state failed: %s", type(error).__name__)
            await asyncio.sleep(PRUNE_EVERY_SECONDS)
