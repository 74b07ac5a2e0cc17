"""KimiClient: the bot's only way to Kimi."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.kimi.assembly import result_from_completion
from bot.kimi.chat_turn import ChatTurn
from bot.kimi.config import KimiConfig
from bot.kimi.errors import KimiError, KimiFileExtractionFailed, KimiFileLimit, KimiIncompleteStream
from bot.kimi.events import ChatResult, Finish, StreamEvent
from bot.kimi.resources import Balance, FileObject, ModelInfo, currency_for
from bot.kimi.retry import Sleep
from bot.kimi.shaping import ChatOptions
from bot.kimi.transport import CHAT_PATH, Transport

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 100 * 1024 * 1024
MODELS_RETRY_AFTER_FAILURE = 60.0


class KimiClient:
    """Chat (streamed or not), models, token estimation, balance and files, over one shared
    aiohttp session. Use `async with KimiClient(config) as kimi:` or start()/close()."""

    def __init__(self, config: KimiConfig, *, sleep: Sleep = asyncio.sleep) -> None:
        # sleep is injectable so tests can see the retry waits without spending them.
        self.config = config
        self._transport = Transport(config, sleep=sleep)
        self._models: list[ModelInfo] | None = None
        self._models_due_at = 0.0
        self._models_lock = asyncio.Lock()

    def queue_wait_estimate(self) -> float:
        """Roughly how many seconds a chat asking now would wait for a free upstream slot (the
        account's concurrency and per-minute limits), so the user can be told; 0 if none."""
        return self._transport.queue_wait_estimate()

    async def start(self) -> None:
        await self._transport.start()

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> KimiClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # --- chat -----------------------------------------------------------------------------

    async def stream_chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int,
        tools: Sequence[Mapping[str, Any]] | None = None,
        web_search: bool = False,
        temperature: float | None = None,
        context_length: int | None = None,
        input_tokens: int | None = None,
        thinking: bool | None = None,
        max_searches: int | None = None,
        max_search_tokens: int | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Stream one turn as typed events.

        Per upstream call: deltas as they come, then (only after data: [DONE]) the assembled
        ToolCalls, Finish and Usage. With web_search, each search round trip yields its
        WebSearchCall(s) and that call's Usage, and the next call follows; the caller sums the
        Usages. A stream that ends without [DONE] or stalls raises KimiIncompleteStream with
        everything the turn received.
        """
        turn = self._start_turn(
            model,
            messages,
            max_tokens,
            tools,
            web_search,
            temperature,
            context_length,
            input_tokens,
            thinking,
        )
        turn.options = replace(turn.options, max_searches=max_searches, max_search_tokens=max_search_tokens)
        while True:
            body = turn.request_body(stream=True)
            try:
                async with self._transport.open_stream(body) as stream:
                    async for event in stream:
                        yield event
                    result = stream.result
            except KimiIncompleteStream as cut:
                raise cut.after(turn.earlier_content, turn.earlier_reasoning) from None
            searches = turn.continue_after(result)
            if searches:
                for search in searches:
                    yield search
                if result.usage is not None:
                    yield result.usage
                continue
            _log_finished(model, result)
            for call in result.tool_calls:
                yield call
            yield Finish(result.finish_reason)
            if result.usage is not None:
                yield result.usage
            return

    async def chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int,
        tools: Sequence[Mapping[str, Any]] | None = None,
        web_search: bool = False,
        temperature: float | None = None,
        context_length: int | None = None,
        input_tokens: int | None = None,
        thinking: bool | None = None,
    ) -> ChatResult:
        """One turn without streaming, for internal calls such as summarising history.

        With web search the result's content joins all calls, usage is their sum and the
        searches are listed in web_search_calls.
        """
        turn = self._start_turn(
            model,
            messages,
            max_tokens,
            tools,
            web_search,
            temperature,
            context_length,
            input_tokens,
            thinking,
        )
        while True:
            body = turn.request_body(stream=False)
            payload = await self._transport.request_json("POST", CHAT_PATH, json_body=body, slow=True)
            result = result_from_completion(payload)
            if turn.continue_after(result):
                continue
            _log_finished(model, result)
            return ChatResult(
                content=turn.earlier_content + result.content,
                reasoning=turn.earlier_reasoning + result.reasoning,
                tool_calls=result.tool_calls,
                finish_reason=result.finish_reason,
                usage=turn.usage,
                web_search_calls=tuple(turn.searches),
            )

    def _start_turn(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        max_tokens: int,
        tools: Sequence[Mapping[str, Any]] | None,
        web_search: bool,
        temperature: float | None,
        context_length: int | None,
        input_tokens: int | None,
        thinking: bool | None = None,
    ) -> ChatTurn:
        options = ChatOptions(
            model=model,
            max_tokens=max_tokens,
            tools=tools,
            web_search=web_search,
            temperature=temperature,
            context_length=context_length or self._cached_context_length(model),
            thinking=thinking,
        )
        return ChatTurn(options, messages, input_tokens=input_tokens)

    # --- models, tokens, balance ---------------------------------------------------------

    async def list_models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """The account's models, cached for config.models_refresh seconds. A failed refresh
        keeps serving the last list and tries again a minute later, not on every call."""
        async with self._models_lock:
            if refresh or self._models is None or time.monotonic() >= self._models_due_at:
                try:
                    payload = await self._transport.request_json("GET", "/models")
                except KimiError as error:
                    if self._models is None:
                        raise
                    logger.warning(
                        "kimi models refresh failed, keeping the cached list: %s", error.log_text()
                    )
                    self._models_due_at = time.monotonic() + min(
                        MODELS_RETRY_AFTER_FAILURE, self.config.models_refresh
                    )
                else:
                    self._models = [
                        ModelInfo.from_wire(raw)
                        for raw in payload.get("data") or ()
                        if isinstance(raw, dict) and "id" in raw
                    ]
                    self._models_due_at = time.monotonic() + self.config.models_refresh
            return list(self._models or ())

    def _cached_context_length(self, model: str) -> int | None:
        # Only what is already cached: shaping a request must not cost an extra request.
        for info in self._models or ():
            if info.id == model:
                return info.context_length
        return None

    async def estimate_tokens(self, model: str, messages: Sequence[Mapping[str, Any]]) -> int:
        payload = await self._transport.request_json(
            "POST",
            "/tokenizers/estimate-token-count",
            json_body={"model": model, "messages": list(messages)},
        )
        return int(payload["data"]["total_tokens"])

    async def balance(self) -> Balance:
        # Decimal straight from the JSON text: a balance is money, never a float.
        payload = await self._transport.request_json("GET", "/users/me/balance", parse_float=Decimal)
        return Balance.from_wire(payload.get("data") or {}, currency_for(self.config.base_url))

    # --- files ----------------------------------------------------------------------------

    async def upload(self, data: bytes, filename: str, purpose: str = "file-extract") -> FileObject:
        """Store a file (and, for file-extract, extract its text). A file whose extraction
        failed is deleted again (it would count toward the 1000-file limit) and raises
        KimiFileExtractionFailed."""
        if len(data) > MAX_FILE_BYTES:
            # Refused without sending: the platform would say the same after 100 MB of upload.
            raise KimiFileLimit(
                f"file of {len(data)} bytes is over the 100 MB limit", kind=KimiFileLimit.TOO_LARGE
            )

        def form() -> aiohttp.FormData:
            # Raw UTF-8 names, as browsers and the official SDK send them; aiohttp would
            # otherwise percent-encode "报告.pdf" into a name the platform keeps verbatim.
            fields = aiohttp.FormData(quote_fields=False)
            fields.add_field("purpose", purpose)
            fields.add_field(
                "file", data, filename=_header_safe(filename), content_type="application/octet-stream"
            )
            return fields

        payload = await self._transport.request_json("POST", "/files", form=form, slow=True)
        stored = FileObject.from_wire(payload)
        if stored.status == "error":
            await self._delete_quietly(stored.id)
            raise KimiFileExtractionFailed(stored.status_details or "text extraction failed")
        return stored

    async def file_content(self, file_id: str) -> str:
        """The extracted text. The body is a JSON string {"content", ...} in practice (the spec
        says text/plain); anything else is returned as it came."""
        text = await self._transport.request("GET", f"/files/{_path_part(file_id)}/content")
        try:
            parsed = json.loads(text)
        except ValueError:
            return text
        if isinstance(parsed, dict) and isinstance(parsed.get("content"), str):
            return parsed["content"]
        return text

    async def delete_file(self, file_id: str) -> None:
        await self._transport.request("DELETE", f"/files/{_path_part(file_id)}")

    async def list_files(self) -> list[FileObject]:
        payload = await self._transport.request_json("GET", "/files")
        return [FileObject.from_wire(raw) for raw in payload.get("data") or ()]

    async def _delete_quietly(self, file_id: str) -> None:
        try:
            await self.delete_file(file_id)
        except KimiError as error:
            logger.warning("kimi could not delete file %s: %s", file_id, error.log_text())


def _header_safe(filename: str) -> str:
    # A control character in a multipart header is refused (header injection); user-supplied
    # names can carry them, so they become "_".
    return "".join("_" if ord(char) < 32 or ord(char) == 127 else char for char in filename)


def _path_part(file_id: str) -> str:
    return quote(file_id, safe="")


def _log_finished(model: str, result: ChatResult) -> None:
    usage = result.usage
    logger.debug(
        "kimi chat finished model=%s finish_reason=%s prompt=%s completion=%s cached=%s",
        model,
        result.finish_reason,
        usage.prompt_tokens if usage else None,
        usage.completion_tokens if usage else None,
        usage.cached_tokens if usage else None,
    )
