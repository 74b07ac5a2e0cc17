"""Counts every Bot API call and 429 for /metrics, and learns from them whether Telegram answers.

It wraps the flood guard (PTB has one rate limiter slot): the guard paces and retries, and each
attempt it makes goes through `_attempt` here, so retries after a 429 are counted one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

from bot.health import Health
from bot.metrics import Metrics

Result = bool | dict[str, Any] | list[dict[str, Any]]


class MeteredRateLimiter(BaseRateLimiter[dict[str, Any]]):
    def __init__(self, inner: BaseRateLimiter[dict[str, Any]], metrics: Metrics, health: Health) -> None:
        self._inner = inner
        self._metrics = metrics
        self._health = health

    async def initialize(self) -> None:
        await self._inner.initialize()

    async def shutdown(self) -> None:
        await self._inner.shutdown()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> Result:
        async def attempt(*call_args: Any, **call_kwargs: Any) -> Result:
            self._metrics.telegram_calls.labels(endpoint).inc()
            try:
                result = await callback(*call_args, **call_kwargs)
            except RetryAfter:
                self._metrics.telegram_429s.labels(endpoint).inc()
                self._health.note_telegram(True)
                raise
            except NetworkError as error:
                # BadRequest and friends are answers; only a failed connection or a 5xx is not.
                self._health.note_telegram(not _unreachable(error))
                raise
            except TelegramError:
                self._health.note_telegram(True)
                raise
            self._health.note_telegram(True)
            return result

        return await self._inner.process_request(attempt, args, kwargs, endpoint, data, rate_limit_args)


def _unreachable(error: NetworkError) -> bool:
    # PTB raises BadRequest (a NetworkError subclass) for 400s; those prove Telegram is there.
    return not isinstance(error, BadRequest)
