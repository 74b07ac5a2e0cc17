"""Group chats: answer only what is meant for the bot, and stay only where admins allow it."""

from __future__ import annotations

import logging

from telegram import ChatMemberUpdated, Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import Application, ChatMemberHandler

from handlers.access import group_allowed
from handlers.bot_context import BotContext
from handlers.chat import answer
from handlers.documents import summarise_replied_document
from handlers.photos import answer_replied_picture
from handlers.services import services
from handlers.texts import language_of, text
from handlers.triggers import addressed_text

log = logging.getLogger(__name__)


async def on_group_text(update: Update, context: BotContext) -> None:
    svc = services(context)
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    question = addressed_text(message, context.bot)
    if question is None:
        return  # not for us: never answered, never charged
    if await answer_replied_picture(update, context, question):
        return
    if await summarise_replied_document(update, context, question):
        return
    replied = message.reply_to_message
    if not question.strip() and replied is not None and (replied.text or replied.caption):
        # "@bot" alone in reply to someone's message: that message is the question.
        question = replied.text or replied.caption or ""
    await answer(context, svc, message, question)


async def on_my_membership(update: Update, context: BotContext) -> None:
    """Added to a group it is not allowed in: say so once, and leave."""
    change: ChatMemberUpdated | None = update.my_chat_member
    svc = services(context)
    if change is None or change.chat.type not in ("group", "supergroup"):
        return
    joined = change.new_chat_member.status in (ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR)
    was_in = change.old_chat_member.status in (ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR)
    if not joined or was_in or group_allowed(svc, change.chat.id):
        return
    lang = language_of(change.from_user.language_code if change.from_user else None)
    try:
        await context.bot.send_message(change.chat.id, text(lang, "group_not_allowed"))
    except TelegramError as error:
        log.info("could not say goodbye in %s: %s", change.chat.id, error)
    try:
        await context.bot.leave_chat(change.chat.id)
    except TelegramError as error:
        log.warning("could not leave %s: %s", change.chat.id, error)


def register(application: Application) -> None:
    application.add_handler(ChatMemberHandler(on_my_membership, ChatMemberHandler.MY_CHAT_MEMBER))
