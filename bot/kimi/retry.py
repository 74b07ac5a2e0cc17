"""The one place where requests to Kimi are retried.

Rules: only errors marked retryable (rate limited, overloaded, 5xx, connection failures) are
retried; the server's advice ("please try again after N seconds" or Retry-After) sets the wait,
otherwise exponential backoff with jitter; the whole affair is bounded both in time and in
attempts, and if the advised wait does not fit in the time left, the error is raised at once.
Callers decide what one attempt is; for streams it ends when the first event is ready, so nothing
is retried after the caller has seen part of an answer.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from bot.kimi.errors import KimiError

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, KimiError) and error.retryable


class RetryPolicy:
    def __init__(
        self,
        *,
        max_total: float,
        max_attempts: int,
        base_delay: float,
        max_delay: float,
        sleep: Sleep,
    ) -> None:
        self._max_total = max_total
        self._max_attempts = max_attempts
        self._backoff = wait_exponential_jitter(multiplier=base_delay, max=max_delay, jitter=base_delay)
        self._sleep = sleep

    def attempts(self, what: str) -> AsyncRetrying:
        """Use as `async for attempt in policy.attempts("..."): with attempt: ...`."""
        return AsyncRetrying(
            retry=retry_if_exception(_is_retryable),
            wait=self._wait,
            # stop_before_delay looks at the upcoming wait: an advised wait longer than the time
            # left stops the retries now instead of sleeping and giving up later.
            stop=stop_before_delay(self._max_total) | stop_after_attempt(self._max_attempts),
            sleep=self._sleep,
            before_sleep=lambda state: _log_retry(what, state),
            reraise=True,
        )

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        advised = getattr(error, "retry_after", None)
        if isinstance(advised, int | float):
            # Honour the advice, plus a little jitter so that many waiting turns do not all come
            # back in the same instant.
            return float(advised) + random.uniform(0, min(1.0, 0.1 * advised))
        return float(self._backoff(state))


def _log_retry(what: str, state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    described = error.log_text() if isinstance(error, KimiError) else type(error).__name__
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.warning(
        "kimi %s failed (attempt %d), retrying in %.2fs: %s",
        what,
        state.attempt_number,
        wait,
        described,
    )
