"""Which part of a conversation is sent: the newest turns that fit the model's context window.

Oldest turns go first. A turn (a user message with the answers that followed it) is dropped whole,
so the request never starts with an orphaned assistant reply. Document texts are system messages
and age out like any other turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from bot.token_bound import PER_MESSAGE_TOKENS, message_bound, messages_bound, text_bound
from bot.vision import content_image_tokens, content_text, user_content

# A request's own overhead (roles, separators) per message, in tokens; generous on purpose.
PER_MESSAGE_OVERHEAD = 8


class StoredMessage(Protocol):
    # Read-only, so that frozen records (storage's HistoryMessage, MessageRecord) fit too. A past
    # answer's reasoning is never sent back, so it is not asked for; pictures are optional
    # (`images`, read with getattr).
    @property
    def role(self) -> str: ...
    @property
    def content(self) -> str: ...


@dataclass(frozen=True)
class Window:
    messages: list[dict[str, Any]]
    estimated_tokens: int  # by the measure the window was fitted with
    dropped_turns: int
    # The guaranteed bound of `messages` (token_bound.messages_bound, without the per-request
    # allowance): what a reservation for exactly these messages takes.
    bound_tokens: int


def estimate_text_tokens(text: str) -> int:
    """A close, usually high, guess of Kimi's token count without asking the API.

    Kimi's tokenizer spends about 1 token per 1.5-2 CJK characters and per 4 Latin characters, so
    counting every non-ASCII character as a whole token and ASCII at one per three overestimates
    ordinary text. It is not a guaranteed bound (bot/token_bound.py gives one): it decides how much
    history to offer Kimi's tokenizer when the context is tight, never what a budget reserves.
    """
    # Counted in C: every message of a long history is estimated on every tight turn.
    ascii_chars = len(text) if text.isascii() else len(text.encode("ascii", "ignore"))
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


def estimate_messages_tokens(messages: Sequence[dict[str, Any]]) -> int:
    return sum(estimate_message_tokens(message) for message in messages)


def as_api_message(message: StoredMessage, vision: bool = False) -> dict[str, Any]:
    """The stored message as Kimi takes it; its pictures as image parts only if `vision`. A past
    answer's reasoning is not sent back (it would cost its tokens again on every turn)."""
    images = getattr(message, "images", ())
    content = user_content(message.content, images, vision) if images else message.content
    return {"role": message.role, "content": content}


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


class Measure(Enum):
    """What a window is fitted by: the guaranteed bound (token_bound) or the estimate (a guess)."""

    BOUND = "bound"
    ESTIMATE = "estimate"


class SizedHistory:
    """A history split into turns, each turn measured once by both measures.

    A turn's bound is exactly token_bound.messages_bound of its API messages, and its estimate
    exactly estimate_messages_tokens of them (tests/test_context_window.py holds both to that), so
    fitting by these sums sends and reserves what fitting the messages themselves would. A long
    history is fitted several times per turn (by the bound, then by the estimate for Kimi's count,
    perhaps again): each fit only adds numbers, and API messages are built only for kept turns.
    """

    def __init__(self, history: Sequence[StoredMessage], vision: bool = False) -> None:
        self.vision = vision
        self.turns = split_into_turns(history)
        self.bounds: list[int] = []
        self.estimates: list[int] = []
        for turn in self.turns:
            bound = estimate = 0
            for message in turn:
                content = message.content
                if getattr(message, "images", ()):
                    payload = as_api_message(message, vision)
                    bound += message_bound(payload)
                    estimate += estimate_message_tokens(payload)
                else:  # {"role", "content": str}: what message_bound and the estimate count of it
                    bound += PER_MESSAGE_TOKENS + text_bound(content)
                    estimate += PER_MESSAGE_OVERHEAD + estimate_text_tokens(content)
            self.bounds.append(bound)
            self.estimates.append(estimate)

    def fit(
        self,
        system_prompt: str,
        new_messages: Sequence[dict[str, Any]],
        token_budget: int,
        measure: Measure = Measure.ESTIMATE,
    ) -> Window:
        """The system prompt, as many recent turns as fit in `token_budget`, then the new messages.

        `token_budget` is the context length minus the room kept for the answer. The new messages
        are always kept (the caller refuses or summarises when they alone overflow).
        """
        head = [{"role": "system", "content": system_prompt}] if system_prompt else []
        fixed = [*head, *new_messages]
        fixed_bound = messages_bound(fixed)
        sizes = self.bounds if measure is Measure.BOUND else self.estimates
        used = fixed_bound if measure is Measure.BOUND else estimate_messages_tokens(fixed)
        kept = 0
        for size in reversed(sizes):
            if used + size > token_budget:
                break
            used += size
            kept += 1
        first = len(self.turns) - kept
        body = [as_api_message(message, self.vision) for turn in self.turns[first:] for message in turn]
        return Window(
            messages=head + body + list(new_messages),
            estimated_tokens=used,
            dropped_turns=first,
            bound_tokens=fixed_bound + sum(self.bounds[first:]),
        )


def fit_window(
    system_prompt: str,
    history: Sequence[StoredMessage],
    new_messages: Sequence[dict[str, Any]],
    token_budget: int,
    measure: Measure = Measure.ESTIMATE,
    vision: bool = False,
) -> Window:
    """SizedHistory(history, vision).fit(...), for a history fitted once."""
    return SizedHistory(history, vision).fit(system_prompt, new_messages, token_budget, measure)


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
