"""Keeps the bot inside Telegram's flood limits, for every call it makes, and obeys 429s.

Telegram's published limits: about one message per second in a chat, 20 messages per minute in a
group, about 30 per second overall. Edits count like messages. This is PTB's rate limiter for the
whole bot, so command replies, stream edits and final messages all draw from the same allowance.

A streaming edit is optional work: the streamer asks `delay_for()` / `has_headroom()` first and
passes `rate_limit_args={"retry": False}` so that a 429 is not retried with stale text; the next
edit shows everything received meanwhile. Essential calls (a final message) wait and are retried.

Counting: Telegram counts a message when it arrives, somewhere between the request leaving and its
answer coming back. So a request in flight occupies a slot "now" until it is answered, and from
then on the slot is dated by the answer: every arrival inside a window is counted inside it, however
slow the request, and the full 30 per second can be used without a 429 (a margin of 5, as before,
cost a sixth of the throughput). Waiters are served first come, first served: per chat (a burst
keeps its order) and then across chats (a final message that became ready first goes out first);
they wake when a slot frees by time or when a request in flight is answered. The state of a chat is
dropped once it is idle, so memory does not grow with every chat ever served.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
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


# How often idle chats' state is swept away (seconds of the guard's clock).
SWEEP_INTERVAL = 30.0


@dataclass
class _ChatState:
    landed: deque[float] = field(default_factory=deque)  # answer times of counted messages
    in_flight: int = 0
    waiting: int = 0
    reserved: int = 0
    blocked_until: float = 0.0
    queue: asyncio.Lock = field(default_factory=asyncio.Lock)  # FIFO per chat


class FloodGuard(BaseRateLimiter[dict[str, Any]]):
    def __init__(
        self,
        private_interval: float = 1.0,
        group_limit: int = 20,
        # A second over Telegram's 60: group answers are edited for a minute, a margin is cheap.
        group_window: float = 61.0,
        global_per_second: int = 30,
        max_retries: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.private_interval = private_interval
        self.group_limit = group_limit
        self.group_window = group_window
        self.global_per_second = global_per_second
        self.max_retries = max_retries
        self._clock = clock
        self._chats: dict[int | str, _ChatState] = {}
        self._landed: deque[float] = deque()
        self._in_flight = 0
        self._global_blocked_until = 0.0
        self._global_queue = asyncio.Lock()  # FIFO across chats
        self._answered = asyncio.Event()  # set (and replaced) whenever a request is answered
        self._next_sweep = clock() + SWEEP_INTERVAL

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    @property
    def tracked_chats(self) -> int:
        """Chats whose state is kept (for tests and metrics: it must not grow without bound)."""
        return len(self._chats)

    # --- what the streamer asks ----------------------------------------------------------------

    def delay_for(self, chat_id: int | str) -> float:
        """Seconds until one more message or edit in this chat is within every limit."""
        now = self._clock()
        return max(self._chat_delay(chat_id, now), self._global_delay(now))

    def has_headroom(self, chat_id: int | str) -> bool:
        """Whether an optional edit may be spent now without starving the reserved final messages."""
        if not is_group_chat(chat_id):
            return True
        state = self._chats.get(chat_id)
        if state is None:
            return True
        used = len(self._prune(state, chat_id, self._clock())) + state.in_flight
        return used + state.reserved < self.group_limit

    def reserve(self, chat_id: int | str, slots: int = 1) -> None:
        """Keep `slots` of the group allowance for a stream's final message."""
        self._state(chat_id).reserved += slots

    def unreserve(self, chat_id: int | str, slots: int = 1) -> None:
        state = self._chats.get(chat_id)
        if state is not None:
            state.reserved = max(0, state.reserved - slots)

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
        counted_in = (
            chat_id if endpoint.startswith(_COUNTED_PREFIXES) and endpoint not in _NOT_COUNTED else None
        )
        retry = (rate_limit_args or {}).get("retry", True)
        attempt = 0
        while True:
            if counted_in is not None:
                await self._take_slot(counted_in)
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
                if counted_in is not None:
                    self._answered_in(counted_in)

    async def _take_slot(self, chat_id: int | str) -> None:
        state = self._state(chat_id)
        state.waiting += 1
        try:
            async with state.queue:
                await self._wait(lambda now: self._chat_delay(chat_id, now))
                async with self._global_queue:
                    await self._wait(lambda now: max(self._global_delay(now), self._chat_delay(chat_id, now)))
                    state.in_flight += 1
                    self._in_flight += 1
        finally:
            state.waiting -= 1

    async def _wait(self, delay: Callable[[float], float]) -> None:
        """Until `delay` is 0: sleeps until a slot frees by time, or a request in flight is answered."""
        while (seconds := delay(self._clock())) > 0:
            answered = self._answered
            try:
                await asyncio.wait_for(answered.wait(), seconds)
            except TimeoutError:
                pass

    def _answered_in(self, chat_id: int | str) -> None:
        """A counted request came back: its slot is dated from now (see the module's docstring)."""
        now = self._clock()
        state = self._chats.get(chat_id)
        if state is not None:
            state.in_flight -= 1
            state.landed.append(now)
        self._in_flight -= 1
        self._landed.append(now)
        self._answered.set()
        self._answered = asyncio.Event()
        if now >= self._next_sweep:
            self._sweep(now)

    # --- the arithmetic ----------------------------------------------------------------------------

    def _chat_delay(self, chat_id: int | str, now: float) -> float:
        state = self._chats.get(chat_id)
        if state is None:
            return 0.0
        landed = self._prune(state, chat_id, now)
        waits = [state.blocked_until - now]
        if state.in_flight:
            # About one message a second in every chat: the next waits for this one's answer.
            waits.append(self.private_interval)
        elif landed:
            waits.append(landed[-1] + self.private_interval - now)
        if is_group_chat(chat_id):
            free = self.group_limit - state.in_flight
            if free <= 0:
                waits.append(self.group_window)
            elif len(landed) >= free:
                waits.append(landed[-free] + self.group_window - now)
        return max(0.0, *waits)

    def _global_delay(self, now: float) -> float:
        landed = self._landed
        while landed and landed[0] <= now - 1.0:
            landed.popleft()
        waits = [self._global_blocked_until - now]
        free = self.global_per_second - self._in_flight
        if free <= 0:
            waits.append(1.0)  # woken early by an answer
        elif len(landed) >= free:
            waits.append(landed[-free] + 1.0 - now)
        return max(0.0, *waits)

    def _block(self, chat_id: int | str | None, seconds: float) -> None:
        until = self._clock() + seconds
        if chat_id is None:
            self._global_blocked_until = max(self._global_blocked_until, until)
        else:
            state = self._state(chat_id)
            state.blocked_until = max(state.blocked_until, until)

    def _state(self, chat_id: int | str) -> _ChatState:
        state = self._chats.get(chat_id)
        if state is None:
            state = self._chats[chat_id] = _ChatState()
        return state

    def _prune(self, state: _ChatState, chat_id: int | str, now: float) -> deque[float]:
        horizon = self.group_window if is_group_chat(chat_id) else self.private_interval
        landed = state.landed
        while landed and landed[0] <= now - horizon:
            landed.popleft()
        return landed

    def _sweep(self, now: float) -> None:
        """Forget chats with nothing to remember: no waiter, nothing in flight or held back."""
        self._next_sweep = now + SWEEP_INTERVAL
        for chat_id in list(self._chats):
            state = self._chats[chat_id]
            if (
                not state.waiting
                and not state.in_flight
                and not state.reserved
                and state.blocked_until <= now
                and not self._prune(state, chat_id, now)
            ):
                del self._chats[chat_id]
