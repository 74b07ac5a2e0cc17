"""Answers being streamed, so that a stop (button, /stop, Telegram's draft stop) can end them.

With one process they live in this process's memory. With several replicas on PostgreSQL the
button may reach any replica: each answer is also a row, and a stop is a NOTIFY that the replica
streaming it hears (every replica listens) and turns into its local stop event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

from storage import Coordination

log = logging.getLogger(__name__)


class StopReason(StrEnum):
    USER = "user"  # the stop button, /stop, or Telegram's own stop on a draft
    SHUTDOWN = "shutdown"  # the process is stopping (SIGTERM/SIGINT) and the grace ran out
    CHAT_GONE = "chat_gone"  # Telegram answered 403: blocked, kicked, or the chat is gone


@dataclass(eq=False)
class ActiveAnswer:
    """An answer being streamed, so that its stop button (or /stop, or a shutdown) can end it."""

    user_id: int
    chat_id: int
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(8))
    reason: StopReason | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # set when its handler is done

    def end(self, reason: StopReason) -> None:
        """Stop the answer; the first reason given is the one the user is told."""
        if self.reason is None:
            self.reason = reason
        self.stop.set()


class ActiveAnswers:
    def __init__(self) -> None:
        self._local: dict[str, ActiveAnswer] = {}
        self._shared: Coordination | None = None

    def share(self, coordination: Coordination) -> None:
        """Several replicas: record answers in the database and hear stops from any replica."""
        self._shared = coordination
        coordination.on_stop_signal(self._stop_local)

    # In-process view (shutdown interrupts this replica's own answers only).
    def __len__(self) -> int:
        return len(self._local)

    def __bool__(self) -> bool:
        return bool(self._local)

    def values(self) -> list[ActiveAnswer]:
        return list(self._local.values())

    def _stop_local(self, token: str) -> None:
        active = self._local.get(token)
        if active is not None:
            active.end(StopReason.USER)

    async def add(self, active: ActiveAnswer) -> None:
        self._local[active.token] = active
        if self._shared is not None:
            await self._shared.add_active(active.token, active.chat_id, active.user_id)

    async def remove(self, active: ActiveAnswer) -> None:
        self._local.pop(active.token, None)
        if self._shared is not None:
            with contextlib.suppress(Exception):  # a dead row is ignored and pruned anyway
                await asyncio.shield(self._shared.remove_active(active.token))

    async def owner(self, token: str) -> tuple[int, int] | None:
        """(chat_id, user_id) of the answer with this token, if it is still being streamed."""
        active = self._local.get(token)
        if active is not None:
            return active.chat_id, active.user_id
        if self._shared is not None:
            return await self._shared.active_answer(token)
        return None

    async def stop(self, token: str) -> None:
        if token in self._local:
            self._stop_local(token)
        elif self._shared is not None:
            await self._shared.signal_stop(token)

    async def stop_all_of(self, chat_id: int, user_id: int) -> int:
        """Stop every answer of this user in this chat, on every replica; how many there were."""
        tokens = {t for t, a in self._local.items() if a.chat_id == chat_id and a.user_id == user_id}
        if self._shared is not None:
            tokens |= set(await self._shared.active_tokens(chat_id, user_id))
        for token in tokens:
            await self.stop(token)
        return len(tokens)
