"""Ending running answers when the process is asked to stop (SIGTERM, SIGINT).

Answers get a short grace to finish on their own; the rest are ended the way the stop button
ends them (the text so far becomes a normal message, charged for what was produced), with a
notice that a restart interrupted them. Docker kills the process 10 s after SIGTERM, so the
whole of this must stay well inside that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from handlers.services import BotServices, StopReason

log = logging.getLogger(__name__)


async def end_running_answers(svc: BotServices, grace: float) -> None:
    """Wait up to `grace` seconds for running answers, then end the rest (they finish async)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while svc.active and (remaining := deadline - loop.time()) > 0:
        await _wait_for_any_to_end(svc, remaining)
    svc.shutting_down = True
    if svc.active:
        log.info("shutting down: interrupting %d running answer(s)", len(svc.active))
    for active in list(svc.active.values()):
        active.end(StopReason.SHUTDOWN)


async def _wait_for_any_to_end(svc: BotServices, seconds: float) -> None:
    waiters = {asyncio.ensure_future(active.ended.wait()) for active in svc.active.values()}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waiters, return_exceptions=True)
