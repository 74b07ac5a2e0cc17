"""Kimi's Markdown to Telegram text + entities, with telegramify-markdown doing the parsing.

Entities instead of HTML or MarkdownV2: there is no parse step on Telegram's side, so there is no
"can't parse entities" for half-written Markdown; what remains is entity geometry, which
``entities`` keeps within Telegram's rules.
"""

from __future__ import annotations

import logging

from telegramify_markdown import RenderConfig, convert

from handlers.rendering.entities import telegram_safe_spans
from handlers.rendering.html_fragments import html_to_markdown
from handlers.rendering.message import (
    EntitySpan,
    RenderedMessage,
    Utf16Index,
    message_from_spans,
)

logger = logging.getLogger(__name__)

# Our own config: the library's default one is process-global and mutable, so anything else in
# the process that tweaks it would otherwise change our output.
_CONFIG = RenderConfig.isolated()


def render_markdown(markdown: str) -> RenderedMessage:
    """The whole ``markdown`` rendered, without any length limit; never raises.

    Leading and trailing whitespace is trimmed, as Telegram would. Unfinished constructs of a
    streaming answer render as well as they can: an unclosed code fence is already a code block,
    an unclosed ``**`` or a half-written link shows as the literal characters until it closes.
    If the converter fails on some input, the result is the Markdown source as plain text.
    """
    return message_from_spans(*render_spans(markdown))


def render_spans(markdown: str) -> tuple[str, list[EntitySpan]]:
    """``render_markdown`` before building Telegram objects, for callers that cut the text first
    (building a MessageEntity costs more than everything else here)."""
    markdown = valid_unicode(markdown)
    if not markdown.strip():
        return "", []
    try:
        text, entities = convert(html_to_markdown(markdown), latex_escape=True, config=_CONFIG)
        index = Utf16Index(text)
        spans = [
            EntitySpan(
                str(e.type),
                index.to_py(e.offset),
                index.to_py(e.offset + e.length),
                e.url,
                e.language,
            )
            for e in entities
        ]
        return _trim(text, telegram_safe_spans(text, spans))
    except Exception:
        # The bot must answer even if the converter chokes on something we did not foresee.
        logger.warning("Markdown rendering failed, sending plain text", exc_info=True)
        return markdown.strip(), []


def valid_unicode(text: str) -> str:
    """``text`` with lone surrogates (from a broken decode) replaced: they are not valid UTF-8
    and Telegram rejects the whole request."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        # Round-trip through UTF-16: a paired surrogate becomes its character, a lone one U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _trim(text: str, spans: list[EntitySpan]) -> tuple[str, list[EntitySpan]]:
    stripped = text.strip()
    if stripped == text:
        return text, spans
    shift = len(text) - len(text.lstrip())
    kept = []
    for span in spans:
        start = max(span.start - shift, 0)
        end = min(span.end - shift, len(stripped))
        if start < end:
            kept.append(span.moved(start, end))
    return stripped, kept
