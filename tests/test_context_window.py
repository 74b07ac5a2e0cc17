"""Which history is sent: the newest whole turns that fit, measured once per turn.

SizedHistory measures each turn once and fits by sums; here it is held to the plain algorithm it
replaced (build every turn's API messages, measure them, keep the newest turns while they fit),
and its bound to token_bound's bound of exactly the messages it returns.
"""

from __future__ import annotations

import base64
import io
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from PIL import Image

from bot.context_window import (
    PER_MESSAGE_OVERHEAD,
    Measure,
    SizedHistory,
    estimate_messages_tokens,
    estimate_text_tokens,
    fit_window,
)
from bot.token_bound import PER_REQUEST_TOKENS, messages_bound, request_bound
from bot.turn import HISTORY_CHARS_PER_TOKEN
from bot.vision import user_content
from storage import NewMessage, Store, StoredImage
from tests.fakes.kimi import count_prompt_tokens

ALPHABETS = ("abc xyz,.!\n", "你好世界，。", "🙂👍🏽", "é ß ж", "    \t", "0123456789")
SYSTEM = "You are Kimi."
NEW = [{"role": "user", "content": "and now?"}]


@dataclass(frozen=True)
class Message:
    id: int
    role: str
    content: str
    images: tuple[StoredImage, ...] = ()


def picture(width: int, height: int) -> StoredImage:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, "PNG")
    return StoredImage("image/png", base64.b64encode(buffer.getvalue()).decode())


PICTURES = (picture(64, 48), picture(900, 700))


def random_text(rng: random.Random, length: int, alphabets: Sequence[str] = ALPHABETS) -> str:
    alphabet = "".join(rng.sample(alphabets, rng.randint(1, len(alphabets))))
    return "".join(rng.choice(alphabet) for _ in range(length))


def random_history(rng: random.Random, count: int, alphabets: Sequence[str] = ALPHABETS) -> list[Message]:
    history = []
    for index in range(count):
        role = rng.choices(("user", "assistant", "system"), (5, 5, 1))[0]
        images = (
            tuple(rng.sample(PICTURES, rng.randint(1, 2))) if role == "user" and rng.random() < 0.1 else ()
        )
        text = random_text(rng, rng.randint(0, 400), alphabets)
        history.append(Message(index + 1, role, text, images))
    return history


def reference_fit(
    history: Sequence[Message],
    budget: int,
    measure: Callable[[Sequence[dict[str, Any]]], int],
    vision: bool,
) -> tuple[list[dict[str, Any]], int, int]:
    """The plain algorithm: (messages, tokens used by `measure`, turns dropped)."""
    turns: list[list[Message]] = []
    for message in history:
        joins_document = message.role == "user" and turns and turns[-1][-1].role == "system"
        if turns and (message.role == "assistant" or joins_document):
            turns[-1].append(message)
        else:
            turns.append([message])
    head = [{"role": "system", "content": SYSTEM}]
    used = measure(head) + measure(NEW)
    kept: list[list[dict[str, Any]]] = []
    for turn in reversed(turns):
        payload = [
            {"role": m.role, "content": user_content(m.content, m.images, vision) if m.images else m.content}
            for m in turn
        ]
        cost = measure(payload)
        if used + cost > budget:
            break
        kept.append(payload)
        used += cost
    body = [message for turn in reversed(kept) for message in turn]
    return head + body + NEW, used, len(turns) - len(kept)


@pytest.mark.parametrize("vision", [False, True])
def test_fitting_by_sums_keeps_what_measuring_every_turn_keeps(vision: bool):
    rng = random.Random(3 if vision else 4)
    for _ in range(60):
        sized = SizedHistory(random_history(rng, rng.randint(0, 40)), vision)
        for _ in range(4):
            budget = rng.randint(0, 12_000)
            for measure, reference in (
                (Measure.BOUND, messages_bound),
                (Measure.ESTIMATE, estimate_messages_tokens),
            ):
                window = sized.fit(SYSTEM, NEW, budget, measure)
                history = [m for turn in sized.turns for m in turn]
                messages, used, dropped = reference_fit(history, budget, reference, vision)
                assert window.messages == messages
                assert (window.estimated_tokens, window.dropped_turns) == (used, dropped)
                # The reservation's bound is the bound of exactly what is sent.
                assert window.bound_tokens == messages_bound(window.messages)


def test_the_bound_of_a_window_is_never_below_its_bytes_nor_the_bill():
    rng = random.Random(5)
    for _ in range(40):
        sized = SizedHistory(random_history(rng, rng.randint(1, 30)), vision=True)
        for measure in Measure:
            window = sized.fit(SYSTEM, NEW, rng.randint(500, 20_000), measure)
            bound = PER_REQUEST_TOKENS + window.bound_tokens
            text_bytes = sum(
                len(part["text"].encode()) if isinstance(content, list) else len(content.encode())
                for content in (m["content"] for m in window.messages)
                for part in (content if isinstance(content, list) else [{"type": "text", "text": content}])
                if part["type"] == "text"
            )
            assert bound == request_bound(window.messages)
            assert bound >= text_bytes + len(window.messages)
            assert bound >= count_prompt_tokens(window.messages)


def test_a_turn_is_kept_or_dropped_whole_and_documents_age_out_like_turns():
    history = [
        Message(1, "system", "[a.pdf]\n" + "d" * 3000),
        Message(2, "user", "what is in it?"),
        Message(3, "assistant", "a" * 300),
        Message(4, "user", "q" * 100),
        Message(5, "assistant", "b" * 100),
        Message(6, "assistant", "c" * 100),
    ]
    sized = SizedHistory(history)
    assert [[m.id for m in turn] for turn in sized.turns] == [[1, 2, 3], [4, 5, 6]]
    fixed = messages_bound([{"role": "system", "content": SYSTEM}, *NEW])
    newest = sized.bounds[1]
    window = sized.fit(SYSTEM, NEW, fixed + newest + sized.bounds[0] - 1, Measure.BOUND)
    assert [m["content"][0] for m in window.messages[1:-1]] == ["q", "b", "c"]
    assert window.dropped_turns == 1
    window = sized.fit(SYSTEM, NEW, fixed + newest - 1, Measure.BOUND)
    assert window.messages == [{"role": "system", "content": SYSTEM}, *NEW]
    assert window.dropped_turns == 2


def test_the_estimate_counts_ascii_at_a_third_and_anything_else_whole():
    rng = random.Random(6)
    for _ in range(300):
        text = random_text(rng, rng.randint(0, 200))
        ascii_chars = sum(1 for char in text if char < "\x80")
        assert estimate_text_tokens(text) == (ascii_chars + 2) // 3 + len(text) - ascii_chars


async def test_reading_what_can_fit_fits_as_reading_everything(any_store: Store):
    """The turn reads newest first only as much as a window of `allowed` tokens could take by the
    estimate (the looser measure): what is fitted from it is what the whole history gives."""
    rng = random.Random(7)
    conversation = await any_store.active_conversation(1, 1)
    # Mostly ASCII, where the estimate is closest to the read's own count (3 characters a token).
    messages = random_history(rng, 30) + random_history(rng, 300, ALPHABETS[:1])
    messages = [replace(m, id=index) for index, m in enumerate(messages, 1)]
    await any_store.add_messages(
        conversation.id, [NewMessage(role=m.role, content=m.content, images=m.images) for m in messages]
    )
    everything = SizedHistory(await any_store.recent_messages(conversation.id, max_chars=10**9))
    assert len(everything.turns) == len(SizedHistory(messages).turns)
    for allowed in (0, 40, 700, 3_000, 9_000):
        read = await any_store.recent_messages(
            conversation.id,
            max_chars=allowed * HISTORY_CHARS_PER_TOKEN,
            chars_per_message=PER_MESSAGE_OVERHEAD * HISTORY_CHARS_PER_TOKEN,
        )
        assert len(read) < len(messages)  # the read stopped early...
        sized = SizedHistory(read)
        for budget in (allowed, allowed - 8, allowed * 2 // 3):
            for measure in Measure:
                # ...and still nothing that could fit was left unread.
                assert sized.fit(SYSTEM, NEW, budget, measure).messages == (
                    everything.fit(SYSTEM, NEW, budget, measure).messages
                )


async def test_the_read_brings_pictures_only_where_there_are_some(any_store: Store):
    conversation = await any_store.active_conversation(2, 2)
    shown = NewMessage(role="user", content="look", images=PICTURES)
    await any_store.add_messages(
        conversation.id,
        [NewMessage(role="user", content="hi"), shown, NewMessage(role="assistant", content="a")],
    )
    read = await any_store.recent_messages(conversation.id, max_chars=10**9)
    assert [(m.content, m.images) for m in read] == [("hi", ()), ("look", PICTURES), ("a", ())]
    await any_store.start_new_conversation(2, 2)  # pictures are forgotten (SQL NULL) at /reset
    read = await any_store.recent_messages(conversation.id, max_chars=10**9)
    assert [(m.content, m.images) for m in read] == [("hi", ()), ("look", ()), ("a", ())]


def test_fit_window_is_one_sized_fit():
    rng = random.Random(8)
    history = random_history(rng, 30)
    for measure in Measure:
        assert fit_window(SYSTEM, history, NEW, 2_000, measure) == SizedHistory(history).fit(
            SYSTEM, NEW, 2_000, measure
        )
