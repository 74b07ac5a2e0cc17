"""Kimi's Markdown as Telegram messages that Telegram cannot reject.

The package's one public entry point: callers import from ``handlers.rendering`` only. It is a
pipeline, one idea per module, in the order the text goes through them:

- ``html_fragments``: the HTML fragments models write (``<br>``, ``<details>``) back to Markdown
- ``markdown``: Markdown -> text + entities (telegramify-markdown does the parsing)
- ``entities``: Telegram's rules for entities (types, nesting, URLs, 100 per message)
- ``split``: cutting at 4096 UTF-16 units without losing or repeating text
- ``growing``: a streaming answer's progress, re-rendering only its last block each time
- ``reasoning``: the preview of a thinking model's reasoning while it streams
- ``message``: the RenderedMessage value and UTF-16 arithmetic they all share

Sending: ``bot.send_message(chat_id, piece.text, entities=piece.entities)`` with no parse_mode.
If Telegram still answers BadRequest, send ``piece.text`` again without entities.

Telegram's 100 entities per message: ``render_markdown`` keeps them all (it has no message to
fit); ``split_rendered``/``render_for_telegram`` also cut where a piece would carry more than 100,
so no formatting is lost; ``render_reasoning_preview``, which must be one message, drops the least
important ones (emphasis before links, code and quotes).
"""

from __future__ import annotations

from handlers.rendering.entities import MAX_ENTITIES_PER_MESSAGE
from handlers.rendering.growing import GrowingRender
from handlers.rendering.markdown import render_markdown, render_spans
from handlers.rendering.message import RenderedMessage, utf16_len
from handlers.rendering.reasoning import DEFAULT_REASONING_LABEL, render_reasoning_preview
from handlers.rendering.split import MAX_MESSAGE_LENGTH, plain_chunks, split_rendered, split_spans

__all__ = [
    "DEFAULT_REASONING_LABEL",
    "GrowingRender",
    "MAX_ENTITIES_PER_MESSAGE",
    "MAX_MESSAGE_LENGTH",
    "RenderedMessage",
    "plain_chunks",
    "render_for_telegram",
    "render_markdown",
    "render_reasoning_preview",
    "split_rendered",
    "utf16_len",
]


def render_for_telegram(markdown: str, limit: int = MAX_MESSAGE_LENGTH) -> list[RenderedMessage]:
    """``markdown`` rendered and split into messages of at most ``limit`` UTF-16 units and
    100 entities each. A blank answer gives ``[]``: there is nothing Telegram would accept."""
    return split_spans(*render_spans(markdown), limit)
