"""Make a list of entities one that Telegram accepts as it is.

The converter's output is close, but not always within Telegram's rules (Bot API, "Formatting
options"), and with entities there is no parse step that could complain: what we send is what
Telegram validates. The rules enforced here:

- only the types a Markdown answer needs; no mentions or custom emoji a model could fake;
- every entity inside the text, non-empty and not whitespace only;
- two entities are either disjoint or one contains the other;
- pre and code contain nothing, and only a blockquote may contain them (bold, italic, underline,
  strikethrough and spoiler "can be part of any other entities, except pre and code", so a bold
  run around inline code is split into the parts before and after the code);
- a text_link contains no other link, pre or code;
- a blockquote is never nested, neither in another blockquote nor in anything else;
- text_link URLs are absolute http(s) URLs, the only kind that is safe to hand over;
- at most 100 entities per message (``keep_most_important``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from telegram.constants import MessageEntityType, MessageLimit

from handlers.rendering.message import EntitySpan

MAX_ENTITIES_PER_MESSAGE: int = MessageLimit.MESSAGE_ENTITIES

QUOTE_KINDS = frozenset({MessageEntityType.BLOCKQUOTE, MessageEntityType.EXPANDABLE_BLOCKQUOTE})
CODE_KINDS = frozenset({MessageEntityType.PRE, MessageEntityType.CODE})
STYLE_KINDS = frozenset(
    {
        MessageEntityType.BOLD,
        MessageEntityType.ITALIC,
        MessageEntityType.UNDERLINE,
        MessageEntityType.STRIKETHROUGH,
        MessageEntityType.SPOILER,
    }
)
LINK_KIND = MessageEntityType.TEXT_LINK
ALLOWED_KINDS = QUOTE_KINDS | CODE_KINDS | STYLE_KINDS | {LINK_KIND}

# Among entities of the same range the container comes first: quote > link > style > code.
_NESTING_ORDER: dict[str, int] = {
    **dict.fromkeys(QUOTE_KINDS, 0),
    LINK_KIND: 1,
    **dict.fromkeys(STYLE_KINDS, 2),
    **dict.fromkeys(CODE_KINDS, 3),
}

# Which entities survive when a message would carry more than 100: structure and code first,
# because losing them changes how the text reads; emphasis last. A spoiler ranks high since
# dropping it would reveal what the author hid.
_IMPORTANCE: dict[str, int] = {
    MessageEntityType.BLOCKQUOTE: 0,
    MessageEntityType.EXPANDABLE_BLOCKQUOTE: 0,
    MessageEntityType.PRE: 1,
    MessageEntityType.CODE: 2,
    MessageEntityType.SPOILER: 3,
    MessageEntityType.TEXT_LINK: 4,
    MessageEntityType.BOLD: 5,
    MessageEntityType.ITALIC: 6,
    MessageEntityType.UNDERLINE: 7,
    MessageEntityType.STRIKETHROUGH: 8,
}

_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.\-]{1,32}")
_MAX_URL_LENGTH = 2048


def is_linkable_url(url: str | None) -> bool:
    """Whether Telegram can take ``url`` as a text_link: an absolute http(s) URL with a host.

    Relative links ("docs/x.md"), anchors and other schemes are kept as plain text instead.
    """
    if not url or len(url) > _MAX_URL_LENGTH:
        return False
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        return False
    try:
        parts = urlsplit(url)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. a malformed IPv6 host
        return False


def code_language(language: str | None) -> str | None:
    """The first word of a fence's info string, if it looks like a language name."""
    if not language:
        return None
    words = language.split()
    if words and _LANGUAGE.fullmatch(words[0]):
        return words[0]
    return None


def telegram_safe_spans(text: str, spans: list[EntitySpan]) -> list[EntitySpan]:
    """Return ``spans`` reduced and reshaped to satisfy every rule in the module docstring.

    The count limit is not applied here: a long text gets split first, see ``keep_most_important``.
    """
    candidates = []
    for span in spans:
        kind = span.kind
        if kind not in ALLOWED_KINDS:
            continue
        start, end = max(span.start, 0), min(span.end, len(text))
        if start >= end:
            continue
        if kind == LINK_KIND:
            if not is_linkable_url(span.url):
                continue
            span = EntitySpan(kind, start, end, url=span.url)
        elif kind == MessageEntityType.PRE:
            span = EntitySpan(kind, start, end, language=code_language(span.language))
        else:
            span = EntitySpan(kind, start, end)
        candidates.append(span)
    candidates.sort(key=lambda s: (s.start, -s.end, _NESTING_ORDER[s.kind]))
    return _drop_whitespace_only(text, _nest_properly(candidates))


def _nest_properly(candidates: list[EntitySpan]) -> list[EntitySpan]:
    """One sweep over spans sorted outer-first, keeping a stack of the open accepted spans."""
    accepted: list[EntitySpan] = []
    # Code found inside a style span cuts a hole in it; keyed by the style span's position in
    # ``accepted``.
    holes: dict[int, list[tuple[int, int]]] = {}
    open_stack: list[int] = []  # positions in ``accepted``, outermost first
    for span in candidates:
        while open_stack and accepted[open_stack[-1]].end <= span.start:
            open_stack.pop()
        ancestors = [accepted[i] for i in open_stack]
        if ancestors and ancestors[-1].end < span.end:
            continue  # crosses an open entity: the converter nests properly, so this is rare
        if not _may_nest(span, ancestors):
            continue
        if span.kind in CODE_KINDS:
            for position in open_stack:
                if accepted[position].kind in STYLE_KINDS:
                    holes.setdefault(position, []).append((span.start, span.end))
        open_stack.append(len(accepted))
        accepted.append(span)

    result: list[EntitySpan] = []
    for position, span in enumerate(accepted):
        if position in holes:
            result.extend(_cut_holes(span, holes[position]))
        else:
            result.append(span)
    return result


def _may_nest(span: EntitySpan, ancestors: list[EntitySpan]) -> bool:
    if not ancestors:
        return True
    if span.kind in QUOTE_KINDS:
        return False
    ancestor_kinds = {a.kind for a in ancestors}
    if ancestor_kinds & CODE_KINDS:
        return False
    if span.kind == LINK_KIND or span.kind in CODE_KINDS:
        return LINK_KIND not in ancestor_kinds
    return True


def _cut_holes(span: EntitySpan, holes: list[tuple[int, int]]) -> list[EntitySpan]:
    pieces = []
    cursor = span.start
    for hole_start, hole_end in sorted(holes):
        if hole_start > cursor:
            pieces.append(span.moved(cursor, hole_start))
        cursor = max(cursor, hole_end)
    if cursor < span.end:
        pieces.append(span.moved(cursor, span.end))
    return pieces


def _drop_whitespace_only(text: str, spans: list[EntitySpan]) -> list[EntitySpan]:
    return [s for s in spans if s.start < s.end and not text[s.start : s.end].isspace()]


def keep_most_important(spans: list[EntitySpan], limit: int = MAX_ENTITIES_PER_MESSAGE) -> list[EntitySpan]:
    """At most ``limit`` spans: the most important kinds, earliest first within a kind.

    Dropping an entity never breaks the nesting rules, so the result stays valid.
    """
    if len(spans) <= limit:
        return spans
    ranked = sorted(range(len(spans)), key=lambda i: (_IMPORTANCE[spans[i].kind], i))
    kept = sorted(ranked[:limit])
    return [spans[i] for i in kept]
