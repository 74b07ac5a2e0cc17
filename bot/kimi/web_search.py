"""Moonshot's built-in $web_search: the client runs the round trip itself.

The model asks for a search with a tool call to $web_search (finish_reason "tool_calls"); the
client appends that assistant message unchanged (reasoning included, thinking models refuse it
otherwise), echoes the call's arguments back as the tool message, and calls again; the server
then searches and answers. Each such call costs a fixed fee, so each one is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.kimi.events import ChatResult, ToolCall, Usage, WebSearchCall

WEB_SEARCH_NAME = "$web_search"
# A bound on the round trips of one turn: each one costs a fee and a request.
MAX_ROUNDS = 5


def web_search_tool() -> dict[str, Any]:
    return {"type": "builtin_function", "function": {"name": WEB_SEARCH_NAME}}


class WebSearchTurn:
    """The state of one turn across its upstream calls: the growing message list, what the
    earlier calls said, and the input size of the next call."""

    def __init__(
        self, messages: Sequence[Mapping[str, Any]], *, enabled: bool, input_tokens: int | None
    ) -> None:
        self.messages: list[Mapping[str, Any]] = list(messages)
        self.input_tokens = input_tokens
        self.earlier_content = ""
        self.earlier_reasoning = ""
        self.searches: list[WebSearchCall] = []
        self.usage: Usage | None = None
        self._enabled = enabled
        self._rounds = 0

    def continue_after(self, result: ChatResult) -> tuple[WebSearchCall, ...]:
        """If result is a request to search, record the round trip and return the searches to
        report (the caller then calls again with self.messages); else return ()."""
        self._rounds += 1
        if result.usage is not None:
            self.usage = result.usage if self.usage is None else self.usage + result.usage
        calls = self._searches_to_run(result)
        if not calls:
            return ()
        searches = tuple(WebSearchCall.from_arguments(call.arguments) for call in calls)
        self.searches.extend(searches)
        self.messages.extend(_round_trip_messages(result, calls))
        self.earlier_content += result.content
        self.earlier_reasoning += result.reasoning
        if self.input_tokens is not None:
            # The next input is this one plus the assistant's message plus the search results,
            # whose size the arguments announce.
            prompt = result.usage.prompt_tokens if result.usage else self.input_tokens
            output = result.usage.completion_tokens if result.usage else 0
            self.input_tokens = prompt + output + sum(s.total_tokens or 0 for s in searches)
        return searches

    def _searches_to_run(self, result: ChatResult) -> tuple[ToolCall, ...]:
        if not self._enabled or self._rounds >= MAX_ROUNDS or result.finish_reason != "tool_calls":
            return ()
        # If the model mixed in the caller's own functions, the caller must answer those; the
        # round trip is then left to the caller as well, with every call returned to it.
        if not result.tool_calls or any(c.name != WEB_SEARCH_NAME for c in result.tool_calls):
            return ()
        return result.tool_calls


def _round_trip_messages(result: ChatResult, calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    assistant: dict[str, Any] = {
        "role": "assistant",
        "content": result.content,
        "tool_calls": [call.to_wire() for call in calls],
    }
    if result.reasoning:
        # Thinking models refuse an assistant tool-call message without its reasoning.
        assistant["reasoning_content"] = result.reasoning
    tool_messages = [
        # The arguments go back unchanged: the server finds its search in them.
        {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": call.arguments}
        for call in calls
    ]
    return [assistant, *tool_messages]
