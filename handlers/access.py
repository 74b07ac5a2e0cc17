"""Who may use the bot: checked once per update, before every handler, so none can forget it.

PTB runs handler groups in order and a handler raising `ApplicationHandlerStop` ends an update's
way through them. `check_access` is registered in a group below every handler's (`ACCESS_GROUP`):

- In a group outside ALLOWED_CHAT_IDS nothing is answered at all, commands and buttons included
  (the bot leaves such groups when added: `groups.on_my_membership` is let through for that).
- A user outside ALLOWED_USER_IDS gets a short "not allowed" reply to a new message meant for the
  bot, i.e. one a handler would take: any in a private chat; in a group, a command, or a message
  that @mentions or replies to the bot (or a document captioned /summary). A button press is
  answered with nothing; everything else is dropped silently.

It takes no await for an allowed update, so the handlers still see updates in arrival order (a
conversation's queue place is taken on arrival).
"""

from __future__ import annotations

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop, CommandHandler, TypeHandler

from handlers.bot_context import BotContext
from handlers.services import BotServices, services
from handlers.texts import text
from handlers.triggers import addressed_text, caption_command

# Below the handlers' default group 0; the metrics count every update a group earlier still.
ACCESS_GROUP = -1


def group_allowed(svc: BotServices, chat_id: int) -> bool:
    allowed = svc.settings.allowed_chat_ids
    return not allowed or chat_id in allowed


def access_handler() -> TypeHandler[Update, BotContext, None]:
    return TypeHandler(Update, check_access)


async def check_access(update: Update, context: BotContext) -> None:
    svc = services(context)
    chat = update.effective_chat
    if update.my_chat_member is not None:
        return  # joining or leaving: groups.on_my_membership decides, for any group
    if chat is not None and chat.type != ChatType.PRIVATE and not group_allowed(svc, chat.id):
        if update.callback_query is not None:
            await update.callback_query.answer()
        raise ApplicationHandlerStop
    user = update.effective_user
    if user is None:
        if update.message is not None:
            raise ApplicationHandlerStop  # a message without a sender is nobody's turn
        return  # e.g. the draft's stop (Bot API 10.3), which PTB does not parse
    if svc.is_allowed(user.id):
        return
    if update.callback_query is not None:
        await update.callback_query.answer()
    elif update.message is not None and _meant_for_bot(update, update.message, context):
        lang = context.incoming.language
        await update.message.reply_text(text(lang, "not_allowed", user_id=user.id))
    raise ApplicationHandlerStop


def _meant_for_bot(update: Update, message: Message, context: BotContext) -> bool:
    """Would a handler take this message and answer it? (Only for refusals: costs no await.)"""
    taker = next(
        (
            handler
            for handler in context.application.handlers.get(0, [])
            if handler.check_update(update) not in (None, False)
        ),
        None,
    )
    if taker is None:
        return False
    if message.chat.type == ChatType.PRIVATE or isinstance(taker, CommandHandler):
        return True
    bot = context.bot
    return addressed_text(message, bot) is not None or caption_command(message, bot, "summary") is not None
