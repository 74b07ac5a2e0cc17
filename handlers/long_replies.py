"""Command replies that may outgrow one Telegram message.

Listings (/users, /report, /model with a large PRICING_FILE, /cost, help texts) grow with the
data behind them, and Telegram refuses a message over 4096 UTF-16 units ("message is too long"),
which would end as the generic error. Such a reply is sent in parts, cut by the same rules as a
streamed answer (``handlers.rendering.plain_chunks``: line breaks first, never inside a surrogate
pair), in order, each a reply to the command. The inline keyboard goes on the last part, under
the end of the listing it belongs to.
"""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Message

from handlers.rendering import plain_chunks


async def reply_in_parts(
    message: Message, reply: str, reply_markup: InlineKeyboardMarkup | None = None
) -> Message:
    """Reply with ``reply``, split at 4096 when it is longer; returns the last message sent."""
    # A blank reply has no chunks; send it as it is (Telegram then says why, as before).
    parts = plain_chunks(reply) or [reply]
    for part in parts[:-1]:
        await message.reply_text(part)
    return await message.reply_text(parts[-1], reply_markup=reply_markup)
