"""What a thinking model's reply looks like while it streams: its reasoning, then the answer.

The reasoning goes into an expandable blockquote under a short label, so it is visible while the
model thinks and folds away once the answer starts; the answer itself never contains it. Only the
tail of the reasoning is kept when space runs out: the end is what the model is writing now.
The reasoning is shown as plain text: cut from the front, its Markdown would be broken anyway.
"""

from __future__ import annotations

from telegram.constants import MessageEntityType

from handlers.rendering.entities import keep_most_important
from handlers.rendering.markdown import render_markdown, valid_unicode
from handlers.rendering.message import (
    EntitySpan,
    RenderedMessage,
    Utf16Index,
    message_from_spans,
    spans_of,
    utf16_len,
)
from handlers.rendering.split import MAX_MESSAGE_LENGTH, split_rendered

DEFAULT_REASONING_LABEL = "💭"
ELLIPSIS = "…"
_ANSWER_SEPARATOR = "\n\n"
# Below this many UTF-16 units a reasoning tail says nothing; leave the quote out instead.
_MIN_QUOTE_LENGTH = 32
# How far to look for a word boundary to start the truncated tail at.
_MAX_WORD_SEARCH = 40


def render_reasoning_preview(
    reasoning: str,
    answer_markdown: str,
    limit: int = MAX_MESSAGE_LENGTH,
    *,
    label: str = DEFAULT_REASONING_LABEL,
) -> RenderedMessage:
    """Label, the reasoning's tail in an expandable quote, then the answer so far; within limit.

    The answer has priority over the reasoning. If the answer alone does not fit, the preview
    shows its last piece (as cut by ``split_rendered``), the part being written now; the earlier
    pieces are the caller's to send as messages of their own.
    """
    header = valid_unicode(label).strip() or DEFAULT_REASONING_LABEL
    header = _tail(header, limit) if utf16_len(header) > limit else header
    answer = render_markdown(answer_markdown)
    reasoning = valid_unicode(reasoning).strip()

    room = limit - utf16_len(header)
    if not answer.is_blank():
        answer_room = room - len(_ANSWER_SEPARATOR)
        if answer.utf16_length() > answer_room:
            pieces = split_rendered(answer, max(answer_room, 2))
            answer = pieces[-1] if pieces else RenderedMessage("")
        room -= len(_ANSWER_SEPARATOR) + answer.utf16_length()

    quote = ""
    if reasoning and room - 1 >= _MIN_QUOTE_LENGTH:  # 1 for the line break after the header
        quote = _tail(reasoning, room - 1)

    text = header
    spans: list[EntitySpan] = []
    if quote:
        text += "\n"
        spans.append(EntitySpan(MessageEntityType.EXPANDABLE_BLOCKQUOTE, len(text), len(text) + len(quote)))
        text += quote
    if not answer.is_blank():
        text += _ANSWER_SEPARATOR
        shift = len(text)
        spans.extend(s.moved(s.start + shift, s.end + shift) for s in spans_of(answer))
        text += answer.text
    return message_from_spans(text, keep_most_important(spans))


def _tail(text: str, limit: int) -> str:
    """The end of ``text`` in at most ``limit`` UTF-16 units, starting with an ellipsis (and at
    a word boundary when one is near) if anything was cut."""
    total = utf16_len(text)
    if total <= limit:
        return text
    index = Utf16Index(text)
    start = index.to_py(total - (limit - len(ELLIPSIS)))
    if index.to_utf16(start) < total - (limit - len(ELLIPSIS)):
        start += 1  # landed inside a surrogate pair: skip the whole character
    boundary = _next_word_start(text, start)
    tail = text[boundary:].lstrip() or text[start:]
    return ELLIPSIS + tail


def _next_word_start(text: str, start: int) -> int:
    if start == 0 or text[start - 1].isspace():
        return start
    for i in range(start, min(start + _MAX_WORD_SEARCH, len(text))):
        if text[i].isspace():
            return i + 1
    return start
