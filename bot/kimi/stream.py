"""One streamed upstream call: reads SSE from an open response and tells completion apart from
everything that only looks like it.

Only data: [DONE] means the answer is complete; a finish_reason, a clean end of the body or a
silent connection do not. How a failure is reported depends on whether the caller has already
seen part of the answer: before the first event the call can still be retried (a connection
error, a timeout or the upstream error itself); after it, the failure becomes
KimiIncompleteStream carrying what arrived.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp

from bot.kimi.assembly import StreamAssembler
from bot.kimi.errors import (
    KimiConnectionError,
    KimiError,
    KimiIncompleteStream,
    KimiServerError,
    KimiTimeout,
)
from bot.kimi.events import ChatResult, StreamEvent
from bot.kimi.redaction import redact
from bot.kimi.sse import DONE, SSEDecoder
from bot.kimi.wire_errors import error_from_payload


class ChatStream:
    def __init__(
        self,
        response: aiohttp.ClientResponse,
        *,
        first_byte_deadline: float,
        idle_timeout: float,
        secrets: Iterable[str] = (),
    ) -> None:
        self._response = response
        self._first_byte_deadline = first_byte_deadline
        self._idle_timeout = idle_timeout
        self._secrets = tuple(secrets)
        self._decoder = SSEDecoder()
        self._assembler = StreamAssembler()
        self._pending: list[StreamEvent] = []
        self._received_bytes = False
        self._delivered = False
        self._done = False
        self._upstream_error: KimiError | None = None
        self._request_id = response.headers.get("Msh-Request-Id")

    async def prime(self) -> None:
        """Read until there is a first event for the caller (or the reply is complete).

        Everything that goes wrong in here happens before the caller saw anything, which is what
        makes the call safe to retry.
        """
        while not self._pending and not self._done:
            self._pending.extend(await self._read_events())

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        while True:
            while self._pending:
                self._delivered = True
                yield self._pending.pop(0)
            if self._done:
                return
            self._pending.extend(await self._read_events())

    @property
    def result(self) -> ChatResult:
        """The whole reply; only valid once the stream completed with [DONE]."""
        if not self._done:
            raise RuntimeError("the stream has not completed")
        return self._assembler.result()

    async def _read_events(self) -> list[StreamEvent]:
        if self._upstream_error is not None:
            raise self._broken_by(self._upstream_error)
        piece = await self._read_piece()
        if not piece:
            raise self._ended_early()
        events: list[StreamEvent] = []
        for payload in self._decoder.feed(piece):
            if payload.strip() == DONE:
                self._done = True
                break
            chunk, error = self._parsed(payload)
            if error is None:
                events.extend(self._assembler.feed(chunk))
                continue
            if not events:
                raise self._broken_by(error)
            # What arrived before the error still reaches the caller; the error comes next.
            self._upstream_error = error
            break
        return events

    def _parsed(self, payload: str) -> tuple[Any, KimiError | None]:
        """The payload's chunk, or the error it carries (in-band error object or malformed JSON)."""
        try:
            chunk = json.loads(payload)
        except ValueError:
            return None, KimiServerError(f"malformed stream chunk: {payload[:80]!r}")
        if not isinstance(chunk, dict):
            return None, KimiServerError(f"unexpected stream chunk: {payload[:80]!r}")
        error = chunk.get("error")
        if not isinstance(error, dict):
            return chunk, None
        # An error sent inside the stream, e.g. a content filter hit on the output.
        return None, error_from_payload(
            None,
            error.get("type"),
            redact(str(error.get("message") or ""), self._secrets),
            request_id=self._request_id,
        )

    async def _read_piece(self) -> bytes:
        try:
            if self._received_bytes:
                async with asyncio.timeout(self._idle_timeout):
                    piece = await self._response.content.readany()
            else:
                async with asyncio.timeout_at(self._first_byte_deadline):
                    piece = await self._response.content.readany()
        except TimeoutError:
            raise self._stalled() from None
        except aiohttp.ClientError:
            # A connection cut mid-body (chunked encoding not terminated, reset) is an early end
            # like any other.
            return b""
        if piece:
            self._received_bytes = True
        return piece

    def _ended_early(self) -> KimiError:
        if not self._delivered:
            return KimiConnectionError(
                "the stream ended before any answer arrived", request_id=self._request_id
            )
        return self._incomplete("the stream ended without data: [DONE]")

    def _stalled(self) -> KimiError:
        if not self._received_bytes:
            return KimiTimeout("no first chunk within the first-byte timeout", request_id=self._request_id)
        if not self._delivered:
            return KimiTimeout(
                f"the stream went silent for {self._idle_timeout:g}s before any answer",
                request_id=self._request_id,
            )
        return self._incomplete(f"no chunk for {self._idle_timeout:g}s, the stream stalled", stalled=True)

    def _broken_by(self, error: KimiError) -> KimiError:
        if not self._delivered:
            return error
        return self._incomplete("the stream was broken by an error", upstream_error=error)

    def _incomplete(
        self, message: str, *, stalled: bool = False, upstream_error: KimiError | None = None
    ) -> KimiIncompleteStream:
        return KimiIncompleteStream(
            message,
            content=self._assembler.content,
            reasoning=self._assembler.reasoning,
            tool_calls=self._assembler.tool_calls(),
            usage=self._assembler.usage,
            finish_reason=self._assembler.finish_reason,
            stalled=stalled,
            upstream_error=upstream_error,
            request_id=self._request_id,
        )
