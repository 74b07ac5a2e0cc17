"""Which part of a conversation is sent: the newest turns that fit the model's context window.

Oldest turns go first. A turn (a user message with the answers that followed it) is dropped whole,
so the request never starts with an orphaned assistant reply. Document texts are system messages
and age out like any other turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.vision import content_image_tokens, content_text, user_content

# A request's own overhead (roles, separators) per message, in tokens; generous on purpose.
PER_MESSAGE_OVERHEAD = 8


class StoredMessage(Protocol):
    # Read-only, so that frozen records (storage's MessageRecord) fit too.
    @property
    def role(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def reasoning(self) -> str | None: ...


@dataclass(frozen=True)
class Window:
    messages: list[dict[str, str]]
    estimated_tokens: int
    dropped_turns: int


def estimate_text_tokens(text: str) -> int:
    """A close, usually high, guess of Kimi's token count without asking the API.

    Kimi's tokenizer spends about 1 token per 1.5-2 CJK characters and per 4 Latin characters, so
    counting every non-ASCII character as a whole token and ASCII at one per three overestimates
    ordinary text. It is not a guaranteed bound (bot/token_bound.py gives one): it decides how much
    history to offer Kimi's tokenizer when the context is tight, never what a budget reserves.
    """
    ascii_chars = sum(1 for char in text if char < "\x80")
    return (ascii_chars + 2) // 3 + (len(text) - ascii_chars)


def estimate_message_tokens(message: dict[str, Any]) -> int:
    content = message.get("content")
    texts = (content_text(content), str(message.get("reasoning_content") or ""))
    # Pictures count by their size (an upper bound of Kimi's tiles), never by their base64 text.
    return (
        PER_MESSAGE_OVERHEAD
        + sum(estimate_text_tokens(text) for text in texts)
        + content_image_tokens(content)
    )


def estimate_messages_tokens(messages: Sequence[dict[str, str]]) -> int:
    return sum(estimate_message_tokens(message) for message in messages)


def as_api_message(message: StoredMessage, vision: bool = False) -> dict[str, Any]:
    """The stored message as Kimi takes it; its pictures as image parts only if `vision`."""
    images = getattr(message, "images", ())
    content = user_content(message.content, images, vision) if images else message.content
    payload: dict[str, Any] = {"role": message.role, "content": content}
    # Kimi asks for reasoning to be echoed back unchanged; a thinking model uses or ignores it.
    if message.role == "assistant" and message.reasoning:
        payload["reasoning_content"] = message.reasoning
    return payload


def split_into_turns(history: Sequence[StoredMessage]) -> list[list[StoredMessage]]:
    """Group history into turns: each starts at a user or system message."""
    turns: list[list[StoredMessage]] = []
    for message in history:
        if message.role in ("user", "system") or not turns:
            if turns and turns[-1] and turns[-1][-1].role == "system" and message.role == "user":
                # A document (system) and the question about it belong to one turn.
                turns[-1].append(message)
                continue
            turns.append([message])
        else:
            turns[-1].append(message)
    return turns


def fit_window(
    system_prompt: str,
    history: Sequence[StoredMessage],
    new_messages: Sequence[dict[str, str]],
    token_budget: int,
    keep_reasoning: bool = False,
    measure: Callable[[Sequence[dict[str, str]]], int] = estimate_messages_tokens,
    vision: bool = False,
) -> Window:
    """The system prompt, as many recent turns as fit in `token_budget`, then the new messages.

    `token_budget` is the context length minus the room kept for the answer.
    The new messages are always kept (the caller refuses or summarises when they alone overflow).
    `measure` counts a list of messages: the guess by default, or a guaranteed bound.
    """
    head = [{"role": "system", "content": system_prompt}] if system_prompt else []
    fixed = measure(head) + measure(new_messages)
    turns = split_into_turns(history)
    kept: list[list[dict[str, str]]] = []
    used = fixed
    for turn in reversed(turns):
        payload = [as_api_message(message, vision) for message in turn]
        if not keep_reasoning:
            payload = [{k: v for k, v in item.items() if k != "reasoning_content"} for item in payload]
        cost = measure(payload)
        if used + cost > token_budget:
            break
        kept.append(payload)
        used += cost
    body = [message for turn in reversed(kept) for message in turn]
    return Window(
        messages=head + body + list(new_messages),
        estimated_tokens=used,
        dropped_turns=len(turns) - len(kept),
    )


def drop_oldest_turns(messages: list[dict[str, str]], fraction: float = 0.5) -> list[dict[str, str]]:
    """Drop the oldest part of the history, keeping the system prompt and the newest turn."""
    if len(messages) <= 2:
        return messages
    head = messages[:1] if messages[0]["role"] == "system" else []
    body = messages[len(head) :]
    user_starts = [index for index, message in enumerate(body) if message["role"] == "user"]
    if len(user_starts) <= 1:
        return messages
    cut_after = max(1, int(len(user_starts) * fraction))
    cut = user_starts[min(cut_after, len(user_starts) - 1)]
    return head + body[cut:]
