"""Per-model shaping of chat request bodies.

Moonshot's models differ in what they accept: kimi-k2.5 and later fix temperature, top_p, n and
the penalties (sending any other value is a 400), kimi-k2-thinking wants temperature 1.0, and every
model refuses input + max_tokens beyond its context window. The body is shaped here so the rest
of the client never has to know a model's quirks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.kimi.errors import KimiContextOverflow
from bot.kimi.web_search import web_search_tool

# "kimi-k2.7-code" -> (2, 7); "kimi-k2-0905-preview" -> (2, 0); "kimi-k3" -> (3, 0). Gateways may
# prefix a vendor ("moonshotai/kimi-k2.6"), hence the search after the last slash.
_GENERATION = re.compile(r"^kimi-k(\d+)(?:\.(\d+))?(?![\d.])")
_FIXED_SAMPLING_SINCE = (2, 5)
THINKING_TEMPERATURE = 1.0


def _base_name(model: str) -> str:
    return model.rsplit("/", 1)[-1].lower()


def model_generation(model: str) -> tuple[int, int] | None:
    match = _GENERATION.match(_base_name(model))
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def has_fixed_sampling(model: str) -> bool:
    """kimi-k2.5 and later: temperature, top_p, n and penalties are fixed by the server."""
    generation = model_generation(model)
    return generation is not None and generation >= _FIXED_SAMPLING_SINCE


def is_k2_thinking(model: str) -> bool:
    return _base_name(model).startswith("kimi-k2-thinking")


def clamp_max_tokens(max_tokens: int, context_length: int | None, input_tokens: int | None) -> int:
    """max_tokens such that input + max_tokens fits the context window; an input that leaves no
    room at all is a context overflow, told before spending a request on it."""
    if context_length is None or input_tokens is None:
        return max_tokens
    room = context_length - input_tokens
    if room < 1:
        raise KimiContextOverflow(
            f"input of {input_tokens} tokens leaves no room in a context of {context_length}"
        )
    return min(max_tokens, room)


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """What the caller asked for, the same on every upstream call of a turn."""

    model: str
    max_tokens: int
    tools: Sequence[Mapping[str, Any]] | None = None
    web_search: bool = False
    temperature: float | None = None
    context_length: int | None = None
    # On a model that can switch thinking (k2.5, k2.6): True/False asks for it on/off; None sends
    # nothing (the model's default). Never send it elsewhere: other models refuse the field.
    thinking: bool | None = None
    # With web_search: the most searches, and search-result tokens in all, the turn may run;
    # beyond them the client stops the round trip (None: only MAX_SEARCH_ROUNDS applies).
    max_searches: int | None = None
    max_search_tokens: int | None = None


def shape_chat_request(
    options: ChatOptions,
    messages: Sequence[Mapping[str, Any]],
    *,
    stream: bool,
    input_tokens: int | None = None,
) -> dict[str, Any]:
    model = options.model
    body: dict[str, Any] = {
        "model": model,
        "messages": list(messages),
        # max_tokens is deprecated in the spec in favour of max_completion_tokens, yet it is
        # what every guide and gateway accepts.
        "max_tokens": clamp_max_tokens(options.max_tokens, options.context_length, input_tokens),
    }
    if is_k2_thinking(model):
        body["temperature"] = THINKING_TEMPERATURE
    elif options.temperature is not None and not has_fixed_sampling(model):
        # Moonshot's range is [0, 1], narrower than OpenAI's [0, 2].
        body["temperature"] = min(max(options.temperature, 0.0), 1.0)

    if options.thinking is not None:
        # k2.5/k2.6 fix the temperature per mode (1.0 thinking, 0.6 not) and refuse any other
        # value, so none is sent: the server applies the mode's own.
        body["thinking"] = {"type": "enabled" if options.thinking else "disabled"}
    all_tools = list(options.tools or ())
    if options.web_search:
        # The declaration must be sent on every request of the round trip.
        all_tools.append(web_search_tool())
        if has_fixed_sampling(model):
            # $web_search does not work with thinking on k2.5; the later models share the switch
            # and are treated alike until shown otherwise.
            body["thinking"] = {"type": "disabled"}
    if all_tools:
        body["tools"] = all_tools

    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body
