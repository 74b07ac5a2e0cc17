"""Input the bot can't act on: other message kinds (video, voice, stickers, polls…), unknown
commands and buttons it no longer knows. Each gets a short reply in the user's language saying what
the bot can do, instead of silence (or, for a button, a spinner that never stops).

Who may use the bot is checked before any handler (handlers/access.py), so these only decide
whether the input is meant for the bot."""

from __future__ import annotations

from telegram import Message, MessageEntity, Update
from telegram.constants import ChatType

from handlers.bot_context import BotContext
from handlers.command_arguments import excerpt
from handlers.texts import language_of, text
from handlers.triggers import addressed_text

# Checked in this order: an animation also carries a document, a venue also a location.
_KINDS = (
    "animation",
    "video_note",
    "video",
    "voice",
    "audio",
    "sticker",
    "venue",
    "location",
    "contact",
    "poll",
    "dice",
    "game",
    "story",
)


def kind_of(message: Message) -> str:
    """The message's kind as a text key suffix ("video", "poll"…), "other" when none is named."""
    return next((kind for kind in _KINDS if getattr(message, kind, None)), "other")


def _lang(message: Message) -> str:
    return language_of(message.from_user.language_code if message.from_user else None)


async def on_unsupported_private(update: Update, context: BotContext) -> None:
    """A private chat is always addressed to the bot."""
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    await message.reply_text(text(_lang(message), "unsupported_kind", kind=_kind_name(message)))


async def on_unsupported_group(update: Update, context: BotContext) -> None:
    """In a group only what mentions the bot in its caption or replies to the bot is for us."""
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    if addressed_text(message, context.bot) is None:
        return  # not for us: other members' stickers and polls are none of the bot's business
    await message.reply_text(text(_lang(message), "unsupported_kind", kind=_kind_name(message)))


def _kind_name(message: Message) -> str:
    return text(_lang(message), f"kind_{kind_of(message)}")


async def on_unknown_command(update: Update, context: BotContext) -> None:
    """A /command the bot does not have: in a private chat, or in a group when named for this bot
    (a bare /command there may be meant for another bot)."""
    message = update.effective_message
    if message is None or message.from_user is None or not message.text:
        return
    entities = message.parse_entities([MessageEntity.BOT_COMMAND])
    command = next((value for entity, value in entities.items() if entity.offset == 0), None)
    if command is None:
        return
    name, _, target = command.partition("@")
    named_for_us = bool(target) and target.lower() == (context.bot.username or "").lower()
    if message.chat.type != ChatType.PRIVATE and not named_for_us:
        return
    await message.reply_text(text(_lang(message), "unknown_command", command=excerpt(name)))


async def on_unknown_button(update: Update, context: BotContext) -> None:
    """A button press no other handler claimed: an old keyboard, or one from an earlier version."""
    query = update.callback_query
    if query is None:
        return
    await query.answer(text(context.incoming.language, "button_expired"))
