"""Keeps the bot inside Telegram's flood limits, for every call it makes, and obeys 429s.

Telegram's published limits: about one message per second in a chat, 20 messages per minute in a
group, about 30 per second overall. Edits count like messages. This is PTB's rate limiter for the
whole bot, so command replies, stream edits and final messages all draw from the same allowance.

A streaming edit is optional work: the streamer asks `delay_for()` / `has_headroom()` first and
passes `rate_limit_args={"retry": False}` so that a 429 is not retried with stale text; the next
edit shows everything received meanwhile. Essential calls (a final message) wait and are retried.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

log = logging.getLogger(__name__)

# Calls that put or change a message in a chat. Chat actions and callback answers do not, and
# neither do drafts: they are previews, not messages (the streamer paces them itself).
_COUNTED_PREFIXES = ("send", "edit", "copy", "forward")
_NOT_COUNTED = frozenset({"sendChatAction", "sendMessageDraft"})


def is_group_chat(chat_id: int | str) -> bool:
    return not isinstance(chat_id, int) or chat_id < 0


def _seconds(retry_after: float | timedelta) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)


class FloodGuard(BaseRateLimiter[dict[str, Any]]):
    def __init__(
        self,
        private_interval: float = 1.0,
        group_limit: int = 20,
        # A second over Telegram's 60 and 5 under its 30: a slot is taken when the request leaves,
        # but Telegram counts it when it arrives, up to a few hundred ms later.
        group_window: float = 61.0,
        global_per_second: int = 25,
        max_retries: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.private_interval = private_interval
        self.group_limit = group_limit
        self.group_window = group_window
        self.global_per_second = global_per_second
        self.max_retries = max_retries
        self._clock = clock
        self._sent: dict[int | str, deque[float]] = {}
        self._global: deque[float] = deque()
        self._blocked_until: dict[int | str, float] = {}
        self._global_blocked_until = 0.0
        self._reserved: dict[int | str, int] = {}
        self._chat_locks: dict[int | str, asyncio.Lock] = {}

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    # --- what the streamer asks ----------------------------------------------------------------

    def delay_for(self, chat_id: int | str) -> float:
        """Seconds until one more message or edit in this chat is within every limit."""
        now = self._clock()
        sent = self._prune(chat_id, now)
        waits = [self._blocked_until.get(chat_id, 0.0) - now, self._global_blocked_until - now]
        if is_group_chat(chat_id) and len(sent) >= self.group_limit:
            waits.append(sent[-self.group_limit] + self.group_window - now)
        if sent:
            # About one message a second in every chat, groups included (their 20 a minute is
            # on top): a reply, a button edit and a final edit in one second are flood-limited.
            waits.append(sent[-1] + self.private_interval - now)
        if len(self._global) >= self.global_per_second:
            waits.append(self._global[-self.global_per_second] + 1.0 - now)
        return max(0.0, *waits)

    def has_headroom(self, chat_id: int | str) -> bool:
        """Whether an optional edit may be spent now without starving the reserved final messages."""
        if not is_group_chat(chat_id):
            return True
        used = len(self._prune(chat_id, self._clock()))
        return used + self._reserved.get(chat_id, 0) < self.group_limit

    def reserve(self, chat_id: int | str, slots: int = 1) -> None:
        """Keep `slots` of the group allowance for a stream's final message."""
        self._reserved[chat_id] = self._reserved.get(chat_id, 0) + slots

    def unreserve(self, chat_id: int | str, slots: int = 1) -> None:
        left = self._reserved.get(chat_id, 0) - slots
        if left > 0:
            self._reserved[chat_id] = left
        else:
            self._reserved.pop(chat_id, None)

    # --- PTB's hook ------------------------------------------------------------------------------

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat_id = data.get("chat_id")
        counted = (
            chat_id is not None and endpoint.startswith(_COUNTED_PREFIXES) and endpoint not in _NOT_COUNTED
        )
        retry = (rate_limit_args or {}).get("retry", True)
        attempt = 0
        while True:
            sent_at = await self._take_slot(chat_id) if counted and chat_id is not None else None
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                wait = _seconds(error.retry_after)
                self._block(chat_id, wait)
                log.warning(
                    "Telegram flood control on %s in chat %s: retry after %.0f s", endpoint, chat_id, wait
                )
                attempt += 1
                if not retry or attempt > self.max_retries:
                    raise
                await asyncio.sleep(wait)
            finally:
                if sent_at is not None and chat_id is not None:
                    self._landed(chat_id, sent_at)

    async def _take_slot(self, chat_id: int | str) -> float:
        lock = self._chat_locks.setdefault(chat_id, asyncio.Lock())
        async with lock:  # FIFO per chat, so a burst keeps its order
            # Polling the clock (not an Event): slots free up by time passing, not by a signal.
            while (delay := self.delay_for(chat_id)) > 0:  # noqa: ASYNC110
                await asyncio.sleep(delay)
            now = self._clock()
            self._sent.setdefault(chat_id, deque()).append(now)
            self._global.append(now)
            return now

    def _landed(self, chat_id: int | str, sent_at: float) -> None:
        """Move a slot from when the request left to when its answer came back.

        Telegram counts a message when it arrives, somewhere in between; counting from the later
        end keeps the window conservative however slow the request was.
        """
        now = self._clock()
        for times in (self._sent.get(chat_id), self._global):
            if times is not None and sent_at in times:
                times.remove(sent_at)
                bisect.insort(times, now)

    def _block(self, chat_id: int | str | None, seconds: float) -> None:
        until = self._clock() + seconds
        if chat_id is None:
            self._global_blocked_until = max(self._global_blocked_until, until)
        else:
            self._blocked_until[chat_id] = max(self._blocked_until.get(chat_id, 0.0), until)

    def _prune(self, chat_id: int | str, now: float) -> deque[float]:
        while self._global and self._global[0] <= now - 1.0:
            self._global.popleft()
        sent = self._sent.get(chat_id)
        if sent is None:
            return deque()
        horizon = self.group_window if is_group_chat(chat_id) else self.private_interval
        while sent and sent[0] <= now - horizon:
            sent.popleft()
        if not sent:
            del self._sent[chat_id]
        return sent
