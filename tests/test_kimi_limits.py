"""The client-side limits' own estimate of a wait, which the bot tells a queued user."""

from __future__ import annotations

import asyncio

from bot.kimi.limits import INITIAL_MEAN_HOLD, RequestLimiter


async def test_no_wait_while_a_slot_is_free():
    limiter = RequestLimiter(max_concurrency=2, max_rpm=100)
    async with limiter.slot():
        assert limiter.wait_estimate() == 0.0


async def test_waiters_ahead_make_the_wait_longer():
    limiter = RequestLimiter(max_concurrency=1, max_rpm=100)
    release = asyncio.Event()

    async def hold():
        async with limiter.slot():
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    alone = limiter.wait_estimate()
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    assert alone == INITIAL_MEAN_HOLD  # one slot, nobody waiting: about one answer's time
    assert limiter.wait_estimate() == 2 * INITIAL_MEAN_HOLD  # one more ahead
    release.set()
    await asyncio.gather(holder, waiter)
    assert limiter.wait_estimate() == 0.0


async def test_the_per_minute_cap_counts_too():
    limiter = RequestLimiter(max_concurrency=10, max_rpm=2, window=60.0)
    for _ in range(2):
        async with limiter.slot():
            pass
    assert 59.0 < limiter.wait_estimate() <= 61.0  # the oldest start leaves the window in ~60 s (+1)
