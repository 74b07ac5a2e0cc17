"""Telegram's flood limits held across replicas: each message or edit also takes a slot in the
database, so that two replicas streaming into one group together stay under its limits.

It sits inside the in-process flood guard (handlers/flood.py), which keeps its own pacing, FIFO
per chat and 429 handling: every attempt the guard lets through waits here for a shared slot too.
Only used with several replicas possible (webhook mode on PostgreSQL); one process keeps the fast
in-process path alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import BaseRateLimiter

from handlers.flood import FloodGuard, is_group_chat
from storage import Coordination

log = logging.getLogger(__name__)

Result = bool | dict[str, Any] | list[dict[str, Any]]

# The shared table counts a message from when it was sent until Telegram answers, then from the
# answer; a request slower than a second falls out of the "last second" while in flight. Five
# messages a second under Telegram's 30 cover that (the in-process guard counts in-flight ones).
GLOBAL_MARGIN = 5

_COUNTED_PREFIXES = ("send", "edit", "copy", "forward")
_NOT_COUNTED = frozenset({"sendChatAction", "sendMessageDraft"})


def counts_as_message(endpoint: str) -> bool:
    return endpoint.startswith(_COUNTED_PREFIXES) and endpoint not in _NOT_COUNTED


class SharedFloodLimiter(BaseRateLimiter[dict[str, Any]]):
    def __init__(self, guard: FloodGuard, coordination: Coordination) -> None:
        self._guard = guard
        self._coordination = coordination

    async def initialize(self) -> None:
        await self._guard.initialize()

    async def shutdown(self) -> None:
        await self._guard.shutdown()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> Result:
        chat_id = data.get("chat_id")
        if not isinstance(chat_id, int) or not counts_as_message(endpoint):
            return await self._guard.process_request(callback, args, kwargs, endpoint, data, rate_limit_args)

        async def with_shared_slot(*call_args: Any, **call_kwargs: Any) -> Result:
            slot = await self._take(chat_id)
            try:
                return await callback(*call_args, **call_kwargs)
            finally:
                if slot is not None:
                    await asyncio.shield(self._landed(slot))

        return await self._guard.process_request(
            with_shared_slot, args, kwargs, endpoint, data, rate_limit_args
        )

    async def _take(self, chat_id: int) -> int | None:
        guard = self._guard
        while True:
            try:
                slot, wait = await self._coordination.take_flood_slot(
                    chat_id,
                    group=is_group_chat(chat_id),
                    chat_interval=guard.private_interval,
                    group_limit=guard.group_limit,
                    group_window=guard.group_window,
                    global_per_second=guard.global_per_second - GLOBAL_MARGIN,
                )
            except Exception as error:  # the database is down: the local guard still paces us
                log.warning(
                    "shared flood slot unavailable (%s); sending on local pacing", type(error).__name__
                )
                return None
            if slot is not None:
                return slot
            await asyncio.sleep(wait)

    async def _landed(self, slot: int) -> None:
        try:
            await self._coordination.flood_slot_landed(slot)
        except Exception as error:
            log.warning("could not move a flood slot to its arrival: %s", type(error).__name__)
