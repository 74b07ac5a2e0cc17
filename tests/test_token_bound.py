"""The local token bound: never below what Kimi (here: the fake's own count) bills."""

from __future__ import annotations

import random

import pytest

from bot.token_bound import (
    PER_REQUEST_TOKENS,
    UnboundedContent,
    register_part_bound,
    request_bound,
    text_bound,
)
from tests.fakes.kimi import count_prompt_tokens

ALPHABETS = ("abc xyz,.!\n", "你好世界，。", "🙂👍🏽", "é ß ж", "    \t", "0123456789")


def random_text(rng: random.Random, length: int) -> str:
    alphabet = "".join(rng.sample(ALPHABETS, rng.randint(1, len(ALPHABETS))))
    return "".join(rng.choice(alphabet) for _ in range(length))


def test_a_text_is_bounded_by_its_utf8_bytes():
    assert text_bound("hello") == 5
    assert text_bound("你好") == 6
    assert text_bound("🙂") == 4
    assert text_bound("") == 0


def test_the_bound_is_never_below_the_fakes_bill():
    rng = random.Random(11)
    for _ in range(300):
        roles = [rng.choice(("system", "user", "assistant")) for _ in range(rng.randint(1, 6))]
        messages = [{"role": role, "content": random_text(rng, rng.randint(0, 300))} for role in roles]
        if rng.random() < 0.3:
            messages[-1]["reasoning_content"] = random_text(rng, 50)
        assert request_bound(messages) >= count_prompt_tokens(messages)


def test_content_parts_need_a_known_bound():
    text_part = [{"type": "text", "text": "你好"}]
    assert request_bound([{"role": "user", "content": text_part}]) == PER_REQUEST_TOKENS + 32 + 6
    picture = [{"type": "x-test-picture", "url": "data:..."}]
    with pytest.raises(UnboundedContent):
        request_bound([{"role": "user", "content": picture}])
    register_part_bound("x-test-picture", lambda part: 1000)
    assert request_bound([{"role": "user", "content": picture}]) == PER_REQUEST_TOKENS + 32 + 1000
