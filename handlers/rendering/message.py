"""A rendered Telegram message: plain text plus entities, and the UTF-16 arithmetic behind it.

Telegram measures entity offsets, entity lengths and the 4096 limit in UTF-16 code units, while
Python indexes strings by code point. Everything in the rendering modules works on Python indices
(``EntitySpan``) so that slicing is trivial, and converts to UTF-16 exactly once, at the edge, with
``Utf16Index``.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

from telegram import MessageEntity

# Code points outside the Basic Multilingual Plane are two UTF-16 code units (a surrogate pair).
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit Telegram counts in."""
    if text.isascii():
        return len(text)
    # surrogatepass: a lone surrogate counts as one unit instead of raising.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class Utf16Index:
    """Maps Python string indices to UTF-16 offsets of one text and back, in O(log n).

    Only the positions of astral characters are stored: before the k-th astral character the two
    coordinate systems differ by k.
    """

    __slots__ = ("_astral_py", "_astral_utf16")

    def __init__(self, text: str) -> None:
        self._astral_py: list[int] = [] if text.isascii() else [m.start() for m in _ASTRAL.finditer(text)]
        self._astral_utf16: list[int] = [i + k for k, i in enumerate(self._astral_py)]

    def to_utf16(self, py_index: int) -> int:
        return py_index + bisect_left(self._astral_py, py_index)

    def to_py(self, utf16_offset: int) -> int:
        """Python index of a UTF-16 offset; an offset inside a surrogate pair rounds down."""
        return utf16_offset - bisect_left(self._astral_utf16, utf16_offset)


@dataclass(frozen=True, slots=True)
class EntitySpan:
    """An entity in Python string indices: ``text[start:end]`` is what it covers."""

    kind: str
    start: int
    end: int
    url: str | None = None
    language: str | None = None

    def moved(self, start: int, end: int) -> EntitySpan:
        return EntitySpan(self.kind, start, end, self.url, self.language)


@dataclass(frozen=True)
class RenderedMessage:
    """Text ready for ``send_message(text=..., entities=...)`` without a parse_mode.

    ``entities`` are in UTF-16 code units and valid for ``text``.
    """

    text: str
    entities: tuple[MessageEntity, ...] = ()

    def utf16_length(self) -> int:
        return utf16_len(self.text)

    def is_blank(self) -> bool:
        """Telegram refuses to send a message whose text is empty after trimming."""
        return not self.text.strip()


def spans_of(message: RenderedMessage) -> list[EntitySpan]:
    """The message's entities in Python indices."""
    index = Utf16Index(message.text)
    spans = []
    for entity in message.entities:
        start = index.to_py(entity.offset)
        end = index.to_py(entity.offset + entity.length)
        spans.append(EntitySpan(str(entity.type), start, end, entity.url, entity.language))
    return spans


def message_from_spans(
    text: str, spans: list[EntitySpan], made: dict[tuple[object, ...], MessageEntity] | None = None
) -> RenderedMessage:
    """Build a RenderedMessage, converting the spans to UTF-16 entities for ``text``.

    ``made``: entities built before, to be reused (a streaming answer's progress carries the same
    ones again and again, and building one costs more than rendering its text; PTB's objects are
    immutable once built)."""
    index = Utf16Index(text)
    entities = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        offset = index.to_utf16(span.start)
        key = (span.kind, offset, index.to_utf16(span.end) - offset, span.url, span.language)
        entity = made.get(key) if made is not None else None
        if entity is None:
            entity = MessageEntity(
                type=key[0], offset=offset, length=key[2], url=span.url, language=span.language
            )
            if made is not None:
                made[key] = entity
        entities.append(entity)
    return RenderedMessage(text, tuple(entities))
