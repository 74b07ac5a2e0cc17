"""Moonshot's built-in $web_search, whose round trip the client runs itself.

The model asks for a search with a tool call to $web_search (finish_reason "tool_calls"); the
client appends that assistant message unchanged (reasoning included, thinking models refuse it
otherwise), echoes the call's arguments back as the tool message, and calls again with the same
declaration; the server then searches and answers. Each such call costs a fixed fee.
"""

from __future__ import annotations

from typing import Any

from bot.kimi.events import ChatResult, ToolCall

WEB_SEARCH_NAME = "$web_search"


def web_search_tool() -> dict[str, Any]:
    return {"type": "builtin_function", "function": {"name": WEB_SEARCH_NAME}}


def searches_requested(result: ChatResult) -> tuple[ToolCall, ...]:
    """The $web_search calls the client should run for this reply, or () if it is not a
    search request.

    If the model mixed in the caller's own functions, the caller must answer those; the round
    trip is then left to the caller as well, with every call returned to it.
    """
    if result.finish_reason != "tool_calls" or not result.tool_calls:
        return ()
    if any(call.name != WEB_SEARCH_NAME for call in result.tool_calls):
        return ()
    return result.tool_calls


def round_trip_messages(result: ChatResult) -> list[dict[str, Any]]:
    """The assistant message and the tool messages that answer its search calls."""
    assistant: dict[str, Any] = {
        "role": "assistant",
        "content": result.content,
        "tool_calls": [call.to_wire() for call in result.tool_calls],
    }
    if result.reasoning:
        # Thinking models refuse an assistant tool-call message without its reasoning.
        assistant["reasoning_content"] = result.reasoning
    tool_messages = [
        # The arguments go back unchanged: the server finds its search in them.
        {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": call.arguments}
        for call in result.tool_calls
    ]
    return [assistant, *tool_messages]
