"""A local upper bound of the tokens Kimi will bill for a request, without asking Kimi.

Why the bound holds: Kimi's tokenizers are byte-level BPE (tiktoken-style). Text is UTF-8
encoded, every single byte is in the vocabulary, and each merge joins two tokens into one, so a
text of n bytes never becomes more than n tokens; splitting text into pre-tokens first only limits
which merges may happen, it never adds tokens. The chat template adds, per message, a few special
tokens around the role name (`<|im_user|>user<|im_middle|>…<|im_end|>`, and reasoning markers on
thinking models), and per request a generation prompt and, when no system message is sent, a
default system prompt. Those are covered by generous fixed allowances below.

So `bytes + allowances` is never below Kimi's count. It is 2-4× above it (a CJK character is 3
bytes and usually 1 token, English averages ~4 bytes a token), which is why the turn asks Kimi's
`/tokenizers/estimate-token-count` when the bound does not leave a full window of history: only
then does the difference matter for what fits. Kimi's estimate is not used for reservations (it
is only an estimate, and billing may exceed it); reservations take this bound.

Content parts other than text (images, i.e. vision input) have their own bounds, registered with
`register_part_bound`: the price of an image depends on its pixels, not on the bytes of its URL.
A part type with no registered bound raises `UnboundedContent`, so nothing is ever priced by guess.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# Per message: the template's special tokens (3), the role name (at most 9 bytes: "assistant"),
# a name field's markers and reasoning markers; far more than any of Moonshot's templates uses.
PER_MESSAGE_TOKENS = 32
# Per request: the generation prompt and a default system prompt the template may insert.
PER_REQUEST_TOKENS = 128

PartBound = Callable[[Mapping[str, Any]], int]


class UnboundedContent(ValueError):
    """A content part whose token count cannot be bounded locally."""


def _text_part(part: Mapping[str, Any]) -> int:
    return text_bound(str(part.get("text") or ""))


_PART_BOUNDS: dict[str, PartBound] = {"text": _text_part}


def register_part_bound(part_type: str, bound: PartBound) -> None:
    """Teach the bound a content part type (e.g. "image_url"): `bound(part)` must never be below
    what Kimi bills for that part."""
    _PART_BOUNDS[part_type] = bound


def text_bound(text: str) -> int:
    """At most one token per UTF-8 byte (byte-level BPE)."""
    if text.isascii():  # the common case: one byte per character, no encoding needed
        return len(text)
    return len(text.encode("utf-8"))


def content_bound(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return text_bound(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            kind = part.get("type") if isinstance(part, Mapping) else None
            bound = _PART_BOUNDS.get(kind) if isinstance(kind, str) else None
            if bound is None:
                raise UnboundedContent(f"no token bound for a content part of type {kind!r}")
            total += bound(part)
        return total
    return text_bound(json.dumps(content, ensure_ascii=False))


def message_bound(message: Mapping[str, Any]) -> int:
    total = PER_MESSAGE_TOKENS + content_bound(message.get("content"))
    for key in ("reasoning_content", "name", "tool_call_id"):
        value = message.get(key)
        if isinstance(value, str):
            total += text_bound(value)
    if message.get("tool_calls"):
        total += text_bound(json.dumps(message["tool_calls"], ensure_ascii=False))
    return total


def messages_bound(messages: Sequence[Mapping[str, Any]]) -> int:
    """Messages only, without the per-request allowance (for summing parts of a request)."""
    return sum(message_bound(message) for message in messages)


def request_bound(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None = None
) -> int:
    """The most prompt tokens Kimi can bill for this request."""
    total = PER_REQUEST_TOKENS + messages_bound(messages)
    if tools:
        total += text_bound(json.dumps(list(tools), ensure_ascii=False))
    return total
