"""What "Telegram cannot reject it" means, written independently of the code under test.

The other rendering tests import these checks; the tests here make sure the checks themselves
catch what they are meant to catch (a checker that accepts everything proves nothing).
"""

from __future__ import annotations

import re
from itertools import combinations

import pytest
from telegram import MessageEntity

from handlers.rendering import RenderedMessage

TELEGRAM_LIMIT = 4096
TELEGRAM_MAX_ENTITIES = 100
TELEGRAM_TYPES = {str(t) for t in MessageEntity.ALL_TYPES}
QUOTES = {"blockquote", "expandable_blockquote"}
CODES = {"pre", "code"}
STYLES = {"bold", "italic", "underline", "strikethrough", "spoiler"}
EMITTED_TYPES = QUOTES | CODES | STYLES | {"text_link"}


def utf16_boundaries(text: str) -> list[int]:
    """UTF-16 offset of every character start, plus the end: the only valid entity edges."""
    offsets = [0]
    for ch in text:
        offsets.append(offsets[-1] + (2 if ord(ch) > 0xFFFF else 1))
    return offsets


def covered_text(message: RenderedMessage, entity: MessageEntity) -> str:
    boundaries = utf16_boundaries(message.text)
    start = boundaries.index(entity.offset)
    end = boundaries.index(entity.offset + entity.length)
    return message.text[start:end]


def entity_problems(message: RenderedMessage, limit: int | None = TELEGRAM_LIMIT) -> list[str]:
    """Everything about ``message`` that Telegram could reject or that breaks its documented rules."""
    problems = []
    boundaries = utf16_boundaries(message.text)
    valid_edges = set(boundaries)
    if limit is not None:
        if boundaries[-1] > limit:
            problems.append(f"text is {boundaries[-1]} UTF-16 units, over {limit}")
        if len(message.entities) > TELEGRAM_MAX_ENTITIES:
            problems.append(f"{len(message.entities)} entities")
    for e in message.entities:
        kind = str(e.type)
        if kind not in TELEGRAM_TYPES or kind not in EMITTED_TYPES:
            problems.append(f"type {kind}")
        if e.length <= 0 or e.offset < 0 or e.offset + e.length > boundaries[-1]:
            problems.append(f"{kind} {e.offset}+{e.length} out of bounds")
            continue
        if e.offset not in valid_edges or e.offset + e.length not in valid_edges:
            problems.append(f"{kind} {e.offset}+{e.length} splits a surrogate pair")
            continue
        if not covered_text(message, e).strip():
            problems.append(f"{kind} {e.offset}+{e.length} covers only whitespace")
        if kind == "text_link" and not re.match(r"https?://[^\s/]+", e.url or ""):
            problems.append(f"text_link url {e.url!r}")
        if kind == "pre" and e.language is not None and not re.fullmatch(r"[\w+#.\-]+", e.language):
            problems.append(f"pre language {e.language!r}")
    for a, b in combinations(message.entities, 2):
        problems.extend(_nesting_problems(a, b))
    return problems


def _nesting_problems(a: MessageEntity, b: MessageEntity) -> list[str]:
    a_start, a_end, b_start, b_end = a.offset, a.offset + a.length, b.offset, b.offset + b.length
    if a_end <= b_start or b_end <= a_start:
        return []
    if (a_start, a_end) == (b_start, b_end):
        # Same range: fine if either can be read as containing the other.
        allowed = _may_contain(str(a.type), str(b.type)) or _may_contain(str(b.type), str(a.type))
    elif a_start <= b_start and b_end <= a_end:
        allowed = _may_contain(str(a.type), str(b.type))
    elif b_start <= a_start and a_end <= b_end:
        allowed = _may_contain(str(b.type), str(a.type))
    else:
        return [f"{a.type} {a_start}-{a_end} crosses {b.type} {b_start}-{b_end}"]
    return [] if allowed else [f"{b.type} {b_start}-{b_end} nested with {a.type} {a_start}-{a_end}"]


def _may_contain(outer: str, inner: str) -> bool:
    """Bot API "Formatting options", read strictly; a blockquote may hold anything but a quote."""
    if outer in CODES or inner in QUOTES:
        return False
    if outer in QUOTES:
        return True
    if outer in STYLES:
        return inner not in CODES
    # text_link: only styles inside it
    return inner in STYLES


def assert_valid(message: RenderedMessage, limit: int | None = TELEGRAM_LIMIT) -> None:
    problems = entity_problems(message, limit)
    assert not problems, f"{problems} in {message!r}"


def assert_pieces_rebuild(whole: str, pieces: list[str]) -> list[int]:
    """The pieces, in order, are the whole text with only whitespace between and around them.

    Returns where each piece starts in ``whole``.
    """
    pattern = r"\s*" + r"\s*".join(f"({re.escape(p)})" for p in pieces) + r"\s*"
    match = re.fullmatch(pattern, whole)
    assert match is not None, "pieces do not rebuild the text"
    # Nothing but whitespace may be dropped, and no piece may be blank.
    assert all(p.strip() for p in pieces)
    return [match.start(i + 1) for i in range(len(pieces))]


# --- the checks catch what they should -----------------------------------------------------------


def _msg(text: str, *entities: MessageEntity) -> RenderedMessage:
    return RenderedMessage(text, tuple(entities))


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (_msg("abc", MessageEntity("bold", 1, 5)), "out of bounds"),
        (_msg("abc", MessageEntity("bold", 1, 0)), "out of bounds"),
        (_msg("😀a", MessageEntity("bold", 1, 2)), "surrogate"),
        (_msg("a  b", MessageEntity("bold", 1, 2)), "whitespace"),
        (_msg("abcd", MessageEntity("bold", 0, 2), MessageEntity("italic", 1, 2)), "crosses"),
        (_msg("abcd", MessageEntity("code", 0, 4), MessageEntity("bold", 1, 2)), "nested"),
        (_msg("abcd", MessageEntity("bold", 0, 4), MessageEntity("code", 1, 2)), "nested"),
        (_msg("abcd", MessageEntity("blockquote", 0, 4), MessageEntity("blockquote", 1, 2)), "nested"),
        (
            _msg("abcd", MessageEntity("text_link", 0, 4, url="https://a.b"), MessageEntity("code", 1, 2)),
            "nested",
        ),
        (_msg("abcd", MessageEntity("text_link", 0, 4, url="foo/bar")), "url"),
        (_msg("abcd", MessageEntity("mention", 0, 4)), "type"),
        (_msg("x" * 4097), "over 4096"),
        (_msg("ab " * 101, *(MessageEntity("bold", 3 * i, 2) for i in range(101))), "101 entities"),
    ],
)
def test_checks_catch_invalid_entities(message: RenderedMessage, expected: str) -> None:
    assert any(expected in p for p in entity_problems(message)), entity_problems(message)


def test_checks_accept_valid_nesting() -> None:
    message = _msg(
        "quote code 😀 bold link",
        MessageEntity("blockquote", 0, 23),
        MessageEntity("pre", 6, 4, language="python"),
        MessageEntity("bold", 11, 7),
        MessageEntity("text_link", 19, 4, url="https://example.com"),
        MessageEntity("italic", 19, 4),
    )
    assert entity_problems(message) == []


def test_rebuild_check_rejects_lost_or_repeated_text() -> None:
    assert assert_pieces_rebuild("ab cd\n\nef", ["ab cd", "ef"]) == [0, 7]
    assert assert_pieces_rebuild("abcd", ["ab", "cd"]) == [0, 2]
    with pytest.raises(AssertionError):
        assert_pieces_rebuild("ab cd ef", ["ab", "ef"])  # lost "cd"
    with pytest.raises(AssertionError):
        assert_pieces_rebuild("ab cd", ["ab c", "cd"])  # repeated "c"
