"""Split a rendered text into Telegram-sized messages without losing or repeating anything.

A piece is ``text[start:end]`` and the next piece begins at or after ``end``; what lies between
two pieces is the whitespace at the cut (the separator), which is dropped because Telegram
would trim it anyway. So the pieces plus the separators, in order, are exactly the text.

Where to cut, looking only at the last half of the largest window that fits (the window is
bounded by the UTF-16 limit and by the 100-entity limit):

1. a paragraph boundary (two or more line breaks; they are the separator),
2. else a line break,
3. else a run of spaces,
4. else just after sentence punctuation (Chinese text has no spaces),
5. else a hard cut at the end of the window, never inside a surrogate pair and, where it can be
   helped, not between an emoji and its modifiers.

Greedy from the start: a piece's cut depends only on the text up to its window's end, so while an
answer streams, a full message keeps its cut when more text arrives behind it.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

from telegram import MessageEntity
from telegram.constants import MessageLimit

from handlers.rendering.entities import MAX_ENTITIES_PER_MESSAGE, keep_most_important
from handlers.rendering.message import (
    EntitySpan,
    RenderedMessage,
    Utf16Index,
    message_from_spans,
    spans_of,
)

MAX_MESSAGE_LENGTH: int = MessageLimit.MAX_TEXT_LENGTH

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_LINE_BREAK = re.compile(r"\n+")
_BLANK_LINES = re.compile(r"(?:[ \t]*\n)+")
_SPACES = re.compile(r"[ \t\u3000]+")
_SENTENCE_END = re.compile(r"[。！？；，、.!?;,:：)）」』】]")
# A hard cut right before one of these would separate it from the character it modifies:
# combining marks, ZWJ/ZWNJ, variation selectors, skin tones, emoji tag characters.
_GLUE = re.compile(
    "[\u0300-\u036f\u20d0-\u20ff\u200c\u200d\ufe0e\ufe0f\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]"
)
_REGIONAL_INDICATOR = re.compile("[\U0001f1e6-\U0001f1ff]")  # two of them make a flag
_MAX_GLUE_BACKOFF = 16


@dataclass(frozen=True, slots=True)
class Cut:
    """One piece ``text[start:end]``; ``text[end:next_start]`` is the dropped separator."""

    start: int
    end: int
    next_start: int


def plan_cuts(
    text: str,
    limit: int = MAX_MESSAGE_LENGTH,
    entity_starts: list[int] | None = None,
    entity_ends: list[int] | None = None,
    max_entities: int = MAX_ENTITIES_PER_MESSAGE,
) -> list[Cut]:
    """Where to split ``text`` (Python indices). Pieces that would be blank are left out.

    ``entity_starts``/``entity_ends`` (same order, sorted by start) let the planner also keep the
    number of entities overlapping a piece within ``max_entities``.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2 UTF-16 units (one astral character)")
    index = Utf16Index(text)
    starts = entity_starts or []
    ends = entity_ends or []
    cuts: list[Cut] = []
    position = 0
    while position < len(text):
        window_end = _window_end(text, index, position, limit, starts, ends, max_entities)
        if window_end >= len(text):
            cut = Cut(position, len(text), len(text))
        else:
            cut = _choose_cut(text, position, window_end)
        if text[cut.start : cut.end].strip():
            cuts.append(cut)
        position = cut.next_start
    return cuts


def _window_end(
    text: str,
    index: Utf16Index,
    position: int,
    limit: int,
    starts: list[int],
    ends: list[int],
    max_entities: int,
) -> int:
    """The largest end such that ``text[position:end]`` fits both limits (at least one char)."""
    end = index.to_py(index.to_utf16(position) + limit)  # rounds down out of a surrogate pair
    if starts:
        # Entities overlapping [position, end): started before end and not ended by position.
        upcoming = [s for s, e in zip(starts, ends, strict=True) if e > position]
        if len(upcoming) > max_entities:
            end = min(end, max(upcoming[max_entities], position + 1))
    return max(end, position + 1)


def _choose_cut(text: str, position: int, window_end: int) -> Cut:
    search_from = position + max(1, (window_end - position) // 2)
    # The separator may run past the window's end (it is dropped), the piece may not.
    for pattern in (_PARAGRAPH_BREAK, _LINE_BREAK, _SPACES):
        found = _last_match(pattern, text, search_from, window_end)
        if found is not None:
            start, end = found
            while pattern is not _SPACES and start > position + 1 and text[start - 1] == "\n":
                start -= 1  # the whole run of line breaks is the separator, not just its tail
            return Cut(position, start, _extend_separator(text, end, pattern))
    found = _last_match(_SENTENCE_END, text, search_from - 1, window_end - 1)
    if found is not None:
        return Cut(position, found[1], found[1])
    hard = _step_back_from_glue(text, position, window_end)
    return Cut(position, hard, hard)


def _last_match(pattern: re.Pattern[str], text: str, lo: int, hi: int) -> tuple[int, int] | None:
    """The last match of ``pattern`` that starts in ``[lo, hi]``; it may end after ``hi``."""
    last = None
    for match in pattern.finditer(text, lo):
        if match.start() > hi:
            break
        last = match
    if last is None:
        return None
    return last.start(), last.end()


def _extend_separator(text: str, end: int, pattern: re.Pattern[str]) -> int:
    """Blank lines right after a line break belong to the separator too; indentation does not,
    since it may be part of a code block's next line."""
    follow = _SPACES if pattern is _SPACES else _BLANK_LINES
    match = follow.match(text, end)
    return match.end() if match else end


def _step_back_from_glue(text: str, position: int, cut: int) -> int:
    """Move a hard cut back to a character boundary a reader would not notice, if one is near."""
    candidate = cut
    for _ in range(_MAX_GLUE_BACKOFF):
        if candidate <= position + 1:
            break
        if not (
            _GLUE.match(text, candidate) or text[candidate - 1] == "\u200d" or _splits_flag(text, candidate)
        ):
            return candidate
        candidate -= 1
    return cut


def _splits_flag(text: str, cut: int) -> bool:
    if not (_REGIONAL_INDICATOR.match(text, cut) and _REGIONAL_INDICATOR.match(text, cut - 1)):
        return False
    run = 0  # regional indicators pair up from the start of their run
    while cut - run - 1 >= 0 and _REGIONAL_INDICATOR.match(text, cut - run - 1):
        run += 1
    return run % 2 == 1


def split_rendered(message: RenderedMessage, limit: int = MAX_MESSAGE_LENGTH) -> list[RenderedMessage]:
    """Pieces of ``message``, each at most ``limit`` UTF-16 units and 100 entities.

    An entity crossing a cut is clipped into both pieces, so a code block cut in the middle
    continues in the next message as a ``pre`` with the same language. Blank pieces are left out,
    so a blank message gives ``[]``.
    """
    if message.utf16_length() <= limit and len(message.entities) <= MAX_ENTITIES_PER_MESSAGE:
        return [] if message.is_blank() else [message]
    return split_spans(message.text, spans_of(message), limit)


def split_spans(
    text: str,
    spans: list[EntitySpan],
    limit: int = MAX_MESSAGE_LENGTH,
    made: dict[tuple[object, ...], MessageEntity] | None = None,
) -> list[RenderedMessage]:
    """``split_rendered`` for a text whose entities are still spans (``made``: see
    ``message_from_spans``)."""
    spans = sorted(spans, key=lambda s: (s.start, -s.end))
    cuts = plan_cuts(text, limit, [s.start for s in spans], [s.end for s in spans])
    return [_piece(text, spans, cut, made) for cut in cuts]


def _piece(
    text: str, spans: list[EntitySpan], cut: Cut, made: dict[tuple[object, ...], MessageEntity] | None
) -> RenderedMessage:
    piece_text = text[cut.start : cut.end]
    clipped = []
    last_candidate = bisect_left([s.start for s in spans], cut.end)
    for span in spans[:last_candidate]:
        start, end = max(span.start, cut.start), min(span.end, cut.end)
        if start < end and not text[start:end].isspace():
            clipped.append(span.moved(start - cut.start, end - cut.start))
    # The planner already kept the count within the limit; this only guards a pathological
    # nesting depth at a single point.
    return message_from_spans(piece_text, keep_most_important(clipped), made)


def plain_chunks(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """The plain-text fallback: ``text`` cut by the same rules, blank pieces left out."""
    return [text[cut.start : cut.end] for cut in plan_cuts(text, limit)]
