"""When a group message is meant for the bot, and what it asks once the @mention is removed.

With privacy mode on, Telegram already filters most traffic; these rules decide among what is left
(a reply to another member's message, for instance, must not wake the bot).
"""

from __future__ import annotations

from telegram import Bot, Message, MessageEntity


def mentions_bot(message: Message, bot: Bot) -> bool:
    return bool(_bot_mentions(message, bot))


def replies_to_bot(message: Message, bot: Bot) -> bool:
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or replied.from_user.id != bot.id:
        return False
    # In forum topics every message "replies" to the topic's creation message; that is no reply.
    if replied.forum_topic_created is not None or (
        message.is_topic_message and replied.message_id == message.message_thread_id
    ):
        return False
    return True


def addressed_text(message: Message, bot: Bot) -> str | None:
    """The question for the bot in a group message (mention removed), or None if not for us."""
    text = message.text or message.caption or ""
    mentions = _bot_mentions(message, bot)
    if not mentions and not replies_to_bot(message, bot):
        return None
    for entity in sorted(mentions, key=lambda e: e.offset, reverse=True):
        text = _cut_utf16(text, entity.offset, entity.length)
    # Removing "@bot" mid-sentence leaves a double space; a multi-line question keeps its lines.
    return " ".join(text.split()) if "\n" not in text else text.strip()


def caption_command(message: Message, bot: Bot, command: str) -> str | None:
    """What follows `/command` (or `/command@this_bot`) at the start of a caption, else None.

    Telegram runs no command handler on captions, so a document sent with "/summary" as its
    caption reaches the document handler, which asks here."""
    entities = message.parse_caption_entities([MessageEntity.BOT_COMMAND])
    caption = message.caption or ""
    for entity, value in entities.items():
        if entity.offset != 0:
            continue
        name, _, target = value[1:].partition("@")
        if name.lower() == command and (not target or target.lower() == (bot.username or "").lower()):
            return " ".join(_cut_utf16(caption, 0, entity.length).split())
    return None


def group_file_question(message: Message, bot: Bot) -> str | None:
    """The question a file or photo in a group asks the bot: its caption after /summary, or a
    caption that mentions the bot or a reply to it; None if it is not for the bot."""
    question = caption_command(message, bot, "summary")
    return question if question is not None else addressed_text(message, bot)


def _bot_mentions(message: Message, bot: Bot) -> list[MessageEntity]:
    username = (bot.username or "").lower()
    found = []
    entities = message.parse_entities() if message.text else message.parse_caption_entities()
    for entity, value in entities.items():
        if entity.type == MessageEntity.MENTION and value.lower() == f"@{username}":
            found.append(entity)
        elif entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot.id:
            found.append(entity)
    return found


def _cut_utf16(text: str, offset: int, length: int) -> str:
    encoded = text.encode("utf-16-le")
    return (encoded[: offset * 2] + encoded[(offset + length) * 2 :]).decode("utf-16-le")
