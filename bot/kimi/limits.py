"""Client-side caps so one bot never trips the account's own limits.

Moonshot limits concurrency and requests per minute per account (Tier 1: 50 and 200). Going over
costs a 429 and, worse, every retry counts against the same RPM; waiting here is cheaper.

The RPM cap is a sliding window rather than aiolimiter's leaky bucket: a bucket of max_rpm lets
a full burst through and then keeps dripping, which puts up to twice max_rpm requests into one
minute (measured: 19 in a second from AsyncLimiter(10, 1)), exactly what a strict server refuses.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# What a slot is held for (a streamed answer) before any was measured, and how fast the measured
# mean follows new holds: only for telling a waiting user roughly how long.
INITIAL_MEAN_HOLD = 10.0
HOLD_SMOOTHING = 0.1
ARRIVAL_MARGIN = 1.0  # seconds


class SlidingWindowLimit:
    """At most max_requests starts in any window of `window` seconds; callers queue in order."""

    def __init__(self, max_requests: int, window: float) -> None:
        self._max_requests = max_requests
        self._window = window
        self._starts: deque[float] = deque()
        self._queue = asyncio.Lock()  # FIFO: whoever waits longest goes first

    async def acquire(self) -> None:
        async with self._queue:
            loop = asyncio.get_running_loop()
            while True:
                now = loop.time()
                while self._starts and now - self._starts[0] >= self._window:
                    self._starts.popleft()
                if len(self._starts) < self._max_requests:
                    self._starts.append(now)
                    return
                await asyncio.sleep(self._starts[0] + self._window - now)

    def wait_estimate(self, ahead: int) -> float:
        """Seconds until the start after `ahead` others could be taken."""
        now = asyncio.get_running_loop().time()
        starts = [start for start in self._starts if now - start < self._window]
        over = len(starts) + ahead - self._max_requests
        if over < 0:
            return 0.0
        if over < len(starts):
            return starts[over] + self._window - now
        return self._window * (over // self._max_requests + 1)  # beyond the current window: rough


class RequestLimiter:
    """A concurrency cap and an RPM cap; callers wait for a slot rather than fail."""

    def __init__(self, *, max_concurrency: int, max_rpm: int, window: float = 60.0) -> None:
        self._max_concurrency = max_concurrency
        self._slots = asyncio.Semaphore(max_concurrency)
        # Moonshot counts a request when it arrives, a little after it left here: a window a second
        # longer keeps the two from seeing different minutes (bench.load, 400 users: 74 × 429).
        self._rate = SlidingWindowLimit(max_rpm, window + ARRIVAL_MARGIN)
        self._in_use = 0
        self._waiting = 0
        self._mean_hold = INITIAL_MEAN_HOLD

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one in-flight request slot for the block; for a stream, its whole lifetime."""
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        self._in_use += 1
        loop = asyncio.get_running_loop()
        taken = loop.time()
        try:
            # The RPM start is taken after the concurrency slot, right before the request goes
            # out, so that requests which waited for a slot do not reach the server in a bunch.
            await self._rate.acquire()
            yield
        finally:
            self._in_use -= 1
            self._slots.release()
            self._mean_hold += HOLD_SMOOTHING * (loop.time() - taken - self._mean_hold)

    def wait_estimate(self) -> float:
        """Roughly how many seconds a request asking now would wait for its slot (0: none).

        Slots free up at about max_concurrency per mean hold time, so the request waits for its
        turn among those already waiting; the per-minute cap may make it wait longer still."""
        ahead = self._waiting
        slots = 0.0
        if self._in_use + ahead >= self._max_concurrency:
            slots = (ahead + 1) * self._mean_hold / self._max_concurrency
        return max(slots, self._rate.wait_estimate(ahead))
