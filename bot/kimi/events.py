"""What a chat with Kimi produces: the typed events of a stream and the result of a whole call."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's thinking; it always comes before any content."""

    text: str


@dataclass(frozen=True, slots=True)
class ContentDelta:
    """A piece of the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a tool call as it streams in; id and name come with the first fragment only."""

    index: int
    id: str | None
    name: str | None
    arguments_fragment: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete tool call; arguments is the JSON string exactly as the model wrote it."""

    index: int
    id: str
    type: str
    name: str
    arguments: str

    def to_wire(self) -> dict[str, Any]:
        """The call as it must be echoed back in the assistant message of the next request."""
        return {
            "id": self.id,
            "type": self.type,
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class WebSearchCall:
    """One $web_search round trip, reported so the caller can charge its fixed fee.

    total_tokens is what the search results will add to the next call's input (Moonshot puts it in
    the arguments as usage.total_tokens); None when it was not there.
    """

    arguments: str
    total_tokens: int | None

    @classmethod
    def from_arguments(cls, arguments: str) -> WebSearchCall:
        total: int | None = None
        try:
            parsed = json.loads(arguments)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("usage"), dict):
            value = parsed["usage"].get("total_tokens")
            total = value if isinstance(value, int) else None
        return cls(arguments=arguments, total_tokens=total)


@dataclass(frozen=True, slots=True)
class Finish:
    """The upstream call completed (data: [DONE] arrived); reason as Moonshot gave it."""

    reason: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one upstream call.

    prompt_tokens includes the cached tokens (observed live on k2.6), so the uncached part is the
    difference.
    """

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0

    @property
    def uncached_prompt_tokens(self) -> int:
        return max(self.prompt_tokens - self.cached_tokens, 0)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Usage:
        # Cached tokens come under either spelling: the documented usage.cached_tokens, or
        # OpenAI's prompt_tokens_details.cached_tokens; the documented one wins when both exist.
        cached = raw.get("cached_tokens")
        if cached is None:
            details = raw.get("prompt_tokens_details")
            cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
        return cls(
            prompt_tokens=int(raw.get("prompt_tokens") or 0),
            completion_tokens=int(raw.get("completion_tokens") or 0),
            cached_tokens=int(cached or 0),
        )


StreamEvent = ReasoningDelta | ContentDelta | ToolCallDelta | ToolCall | WebSearchCall | Finish | Usage


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A whole answer. With web search, usage is the sum over the upstream calls (each call's
    input is billed separately, so the sum is what the account pays)."""

    content: str
    reasoning: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    usage: Usage | None
    web_search_calls: tuple[WebSearchCall, ...] = field(default=())
