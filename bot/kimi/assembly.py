"""Turning Moonshot's chat replies, streamed chunks or whole completions, into typed results.

The traps handled here: usage may sit at the top level of a chunk or inside choices[0] (the
documented place), and cached tokens come under either spelling; tool-call arguments arrive as
fragments keyed by index; only choice 0 matters because the client never asks for n > 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.kimi.events import (
    ChatResult,
    ContentDelta,
    ReasoningDelta,
    StreamEvent,
    ToolCall,
    ToolCallDelta,
    Usage,
)

BUILTIN_PREFIX = "$"  # Moonshot reserves "$" names for its own tools, e.g. $web_search


@dataclass(slots=True)
class _ToolCallParts:
    id: str = ""
    type: str = "function"
    name: str = ""
    arguments: str = ""


class StreamAssembler:
    """Feed it the chunks of one streamed reply; it returns the delta events for the caller and
    keeps everything needed for the final result (or for an incomplete-stream error)."""

    def __init__(self) -> None:
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._tool_calls: dict[int, _ToolCallParts] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None

    @property
    def content(self) -> str:
        return "".join(self._content)

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning)

    def feed(self, chunk: Mapping[str, Any]) -> list[StreamEvent]:
        # Keep the last usage seen wherever it was put: top level (with include_usage, in an extra
        # chunk whose choices are empty) or inside the choice of the last chunk.
        self._take_usage(chunk.get("usage"))
        events: list[StreamEvent] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            self._take_usage(choice.get("usage"))
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content")
            if reasoning:
                self._reasoning.append(reasoning)
                events.append(ReasoningDelta(reasoning))
            content = delta.get("content")
            if content:
                self._content.append(content)
                events.append(ContentDelta(content))
            for fragment in delta.get("tool_calls") or ():
                event = self._take_tool_call_fragment(fragment)
                if event is not None:
                    events.append(event)
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return events

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(index=index, id=parts.id, type=parts.type, name=parts.name, arguments=parts.arguments)
            for index, parts in sorted(self._tool_calls.items())
        )

    def result(self) -> ChatResult:
        return ChatResult(
            content=self.content,
            reasoning=self.reasoning,
            tool_calls=self.tool_calls(),
            finish_reason=self.finish_reason or "stop",
            usage=self.usage,
        )

    def _take_usage(self, raw: object) -> None:
        if isinstance(raw, Mapping):
            self.usage = Usage.from_wire(raw)

    def _take_tool_call_fragment(self, fragment: Mapping[str, Any]) -> ToolCallDelta | None:
        index = int(fragment.get("index", 0))
        parts = self._tool_calls.setdefault(index, _ToolCallParts())
        function = fragment.get("function") or {}
        if fragment.get("id"):
            parts.id = str(fragment["id"])
        if fragment.get("type"):
            parts.type = str(fragment["type"])
        if function.get("name"):
            parts.name = str(function["name"])
        piece = function.get("arguments") or ""
        parts.arguments += piece
        if parts.name.startswith(BUILTIN_PREFIX):
            # Built-in tools are run by the client itself; their fragments mean nothing to callers.
            return None
        return ToolCallDelta(
            index=index,
            id=fragment.get("id"),
            name=function.get("name"),
            arguments_fragment=piece,
        )


def result_from_completion(body: Mapping[str, Any]) -> ChatResult:
    """A non-streamed chat.completion body as a ChatResult."""
    choices = body.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    tool_calls = tuple(
        ToolCall(
            index=index,
            id=str(call.get("id") or ""),
            type=str(call.get("type") or "function"),
            name=str((call.get("function") or {}).get("name") or ""),
            arguments=str((call.get("function") or {}).get("arguments") or ""),
        )
        for index, call in enumerate(message.get("tool_calls") or ())
    )
    raw_usage = body.get("usage") or choice.get("usage")
    return ChatResult(
        content=message.get("content") or "",
        reasoning=message.get("reasoning_content") or "",
        tool_calls=tool_calls,
        finish_reason=str(choice.get("finish_reason") or "stop"),
        usage=Usage.from_wire(raw_usage) if isinstance(raw_usage, Mapping) else None,
    )
