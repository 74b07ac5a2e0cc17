"""A growing answer rendered again and again (the progress of a stream), a block at a time.

While an answer streams, every progress update renders all of it, so an answer of n characters
costs O(n) per update and O(n²) in all. Markdown blocks separated by a blank line render on their
own, and a block followed by a blank line and more text no longer changes as the answer grows:
each such block is rendered once and kept, and only the last one is rendered anew; the entities
(Telegram objects, costlier to build than the text is to render) are built once per answer too.

Cuts are made only where a block certainly ends: at a blank line outside fenced code (``` and
~~~) and display math ($$), before a line that starts at column 0 (an indented line may continue
a list item). The final message is always rendered whole (``render_for_telegram``): a construct
that spans blocks (a reference link defined further down, a loose list) may look slightly
different in a draft, never in the answer.
"""

from __future__ import annotations

from telegram import MessageEntity

from handlers.rendering.markdown import render_spans
from handlers.rendering.message import EntitySpan, RenderedMessage
from handlers.rendering.split import MAX_MESSAGE_LENGTH, split_spans

FENCES = ("```", "~~~", "$$")
BLOCK_SEPARATOR = "\n\n"


def block_ends(markdown: str, start: int = 0) -> list[int]:
    """Offsets after `start` where a block certainly ends and the next begins (see the module doc).
    `start` must itself be such an offset (or 0): outside any fence."""
    ends: list[int] = []
    fence: str | None = None
    after_blank = False
    offset = start
    lines = markdown[start:].split("\n")
    last = len(lines) - 1  # the last line may still be growing: nothing is decided by it
    for number, line in enumerate(lines):
        stripped = line.lstrip()
        if fence is None:
            if after_blank and number < last and line and not line[0].isspace():
                ends.append(offset)
            fence = next((mark for mark in FENCES if stripped.startswith(mark)), None)
            after_blank = fence is None and not stripped
        elif stripped.startswith(fence):
            fence = None
            after_blank = False
        offset += len(line) + 1
    return ends


class GrowingRender:
    """Renders successive versions of one growing text; each call's text must extend the last
    one's (anything else starts afresh)."""

    def __init__(self) -> None:
        self._forget()

    def _forget(self) -> None:
        self._kept_source = ""  # the start of the text whose blocks are rendered in _text/_spans
        self._text = ""
        self._spans: list[EntitySpan] = []
        self._entities: dict[tuple[object, ...], MessageEntity] = {}  # built once per answer

    def render(self, markdown: str, limit: int = MAX_MESSAGE_LENGTH) -> list[RenderedMessage]:
        if not markdown.startswith(self._kept_source):
            self._forget()  # not a growing text after all: start over
        done = len(self._kept_source)
        for end in block_ends(markdown, done):
            self._keep(*render_spans(markdown[done:end]))
            done = end
        self._kept_source = markdown[:done]
        tail_text, tail_spans = render_spans(markdown[done:])
        text, spans = _joined(self._text, self._spans, tail_text, tail_spans)
        return split_spans(text, spans, limit, self._entities)

    def _keep(self, text: str, spans: list[EntitySpan]) -> None:
        self._text, self._spans = _joined(self._text, self._spans, text, spans)


def _joined(
    text: str, spans: list[EntitySpan], more_text: str, more_spans: list[EntitySpan]
) -> tuple[str, list[EntitySpan]]:
    if not more_text:
        return text, spans
    if not text:
        return more_text, list(more_spans)
    base = len(text) + len(BLOCK_SEPARATOR)
    moved = [span.moved(span.start + base, span.end + base) for span in more_spans]
    return text + BLOCK_SEPARATOR + more_text, [*spans, *moved]
