"""HTTP to Moonshot: one shared aiohttp session, the client-side limits, the retries, the
timeouts, and the mapping of failures to typed errors. Every request goes through here."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp

from bot.kimi.config import KimiConfig
from bot.kimi.errors import (
    KimiConnectionError,
    KimiServerError,
    KimiTimeout,
)
from bot.kimi.limits import RequestLimiter
from bot.kimi.redaction import redact
from bot.kimi.retry import RetryPolicy, Sleep
from bot.kimi.stream import ChatStream
from bot.kimi.wire_errors import error_from_response

logger = logging.getLogger(__name__)

CHAT_PATH = "/chat/completions"


class Transport:
    def __init__(self, config: KimiConfig, *, sleep: Sleep = asyncio.sleep) -> None:
        self._config = config
        self._base_url = config.base_url.rstrip("/")
        self._secrets = (config.api_key,)
        self._session: aiohttp.ClientSession | None = None
        self._limiter = RequestLimiter(
            max_concurrency=config.max_concurrency,
            max_rpm=config.max_rpm,
            window=config.rpm_window,
        )
        self._retry = RetryPolicy(
            max_total=config.retry_max_total,
            max_attempts=config.retry_max_attempts,
            base_delay=config.retry_base_delay,
            max_delay=config.retry_max_delay,
            sleep=sleep,
        )

    def queue_wait_estimate(self) -> float:
        """Roughly how long a request asking now would wait for the client-side limits."""
        return self._limiter.wait_estimate()

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {self._config.api_key}"},
                # Only the connect phase is bounded by aiohttp; the first-byte and idle bounds
                # are applied around each wait, where it is known which one applies.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._config.connect_timeout),
                # The RequestLimiter is the cap; a second, smaller one in the pool would only
                # make requests queue where no timeout accounts for it.
                connector=aiohttp.TCPConnector(limit=0),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- whole-body requests -------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
        slow: bool = False,
    ) -> str:
        """Send a request (retried by the policy) and return the body text of a success.

        form is a factory because a FormData cannot be sent twice. slow marks calls whose server
        stays silent until it is done (non-streamed chat, upload): they get response_timeout
        instead of first_byte_timeout.
        """
        async for attempt in self._retry.attempts(f"{method} {path}"):
            with attempt:
                return await self._request_once(method, path, json_body, form, slow)
        raise AssertionError("the retry policy neither returned nor raised")

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
        slow: bool = False,
        parse_float: Callable[[str], Any] = float,
    ) -> Any:
        text = await self.request(method, path, json_body=json_body, form=form, slow=slow)
        try:
            return json.loads(text, parse_float=parse_float)
        except ValueError:
            raise KimiServerError(f"{method} {path} returned a body that is not JSON") from None

    async def _request_once(
        self,
        method: str,
        path: str,
        json_body: Mapping[str, Any] | None,
        form: Callable[[], aiohttp.FormData] | None,
        slow: bool,
    ) -> str:
        async with self._limiter.slot():
            config = self._config
            deadline = self._deadline(config.response_timeout if slow else config.first_byte_timeout)
            response = await self._send(method, path, deadline, json=json_body, data=form() if form else None)
            try:
                body = await self._read_body(response, deadline)
            finally:
                response.release()
            if response.status >= 400 or _carries_error(body):
                # Some endpoints and gateways answer 200 with an error body; it is raised here,
                # inside the attempt, so that a retryable one is retried like any other.
                raise error_from_response(response.status, body, response.headers, secrets=self._secrets)
            return body

    # --- streams --------------------------------------------------------------------------

    @asynccontextmanager
    async def open_stream(self, body: Mapping[str, Any]) -> AsyncIterator[ChatStream]:
        """A chat stream that has produced its first event (or completed).

        Retries happen only while opening, so nothing is retried once the caller has seen part
        of the answer. The concurrency slot is held until the block ends.
        """
        stream, resources = await self._open_stream_with_retries(body)
        async with resources:
            yield stream

    async def _open_stream_with_retries(self, body: Mapping[str, Any]) -> tuple[ChatStream, AsyncExitStack]:
        async for attempt in self._retry.attempts("chat stream"):
            with attempt:
                resources = AsyncExitStack()
                try:
                    return await self._open_stream_once(body, resources), resources
                except BaseException:
                    await resources.aclose()
                    raise
        raise AssertionError("the retry policy neither returned nor raised")

    async def _open_stream_once(self, body: Mapping[str, Any], resources: AsyncExitStack) -> ChatStream:
        await resources.enter_async_context(self._limiter.slot())
        deadline = self._deadline(self._config.first_byte_timeout)
        response = await self._send("POST", CHAT_PATH, deadline, json=body)
        # release() hands a fully read connection back to the pool and closes any other.
        resources.callback(response.release)
        if response.status >= 400 or response.content_type == "application/json":
            # A gateway may answer a stream request with a 200 JSON error; read as SSE it would
            # look like a dropped connection and be retried for nothing.
            text = await self._read_body(response, deadline)
            raise error_from_response(response.status, text, response.headers, secrets=self._secrets)
        stream = ChatStream(
            response,
            first_byte_deadline=deadline,
            idle_timeout=self._config.idle_timeout,
            secrets=self._secrets,
        )
        await stream.prime()
        return stream

    # --- the wire -------------------------------------------------------------------------

    def _deadline(self, seconds: float) -> float:
        return asyncio.get_running_loop().time() + seconds

    async def _send(self, method: str, path: str, deadline: float, **kwargs: Any) -> aiohttp.ClientResponse:
        await self.start()
        assert self._session is not None
        logger.debug("kimi %s %s", method, path)
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._session.request(method, self._base_url + path, **kwargs)
        # aiohttp's connect timeout is both a ClientError and a TimeoutError: it is a
        # connection failure (nothing reached the server), so ClientError is caught first.
        except aiohttp.ClientError as error:
            raise KimiConnectionError(redact(f"{type(error).__name__}: {error}", self._secrets)) from None
        except TimeoutError:
            raise KimiTimeout(f"no response to {method} {path} within the timeout") from None
        logger.debug("kimi %s %s -> %d", method, path, response.status)
        return response

    async def _read_body(self, response: aiohttp.ClientResponse, deadline: float) -> str:
        try:
            async with asyncio.timeout_at(deadline):
                raw = await response.read()
        except aiohttp.ClientError as error:
            raise KimiConnectionError(
                redact(f"the body broke off: {type(error).__name__}: {error}", self._secrets)
            ) from None
        except TimeoutError:
            raise KimiTimeout("the body did not arrive within the timeout") from None
        return raw.decode("utf-8", errors="replace")


def _carries_error(body: str) -> bool:
    if '"error"' not in body:  # the cheap test first: most bodies are long and error-free
        return False
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return isinstance(payload, dict) and isinstance(payload.get("error"), dict)
