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


class RequestLimiter:
    """A concurrency cap and an RPM cap; callers wait for a slot rather than fail."""

    def __init__(self, *, max_concurrency: int, max_rpm: int, window: float = 60.0) -> None:
        self._slots = asyncio.Semaphore(max_concurrency)
        self._rate = SlidingWindowLimit(max_rpm, window)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one in-flight request slot for the block; for a stream, its whole lifetime."""
        async with self._slots:
            # The RPM start is taken after the concurrency slot, right before the request goes
            # out, so that requests which waited for a slot do not reach the server in a bunch.
            await self._rate.acquire()
            yield
