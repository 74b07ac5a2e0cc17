"""The `context` every handler gets: PTB's callback context, plus what the update is about,
resolved once per update (who sent it, in which chat and topic, in which language, and which
conversation it continues).

PTB builds one context per update and hands the same one to every handler group (the access check
in group -1 and the handler in group 0), so `context.incoming` is worked out once.

The application is built with the flood guard as its rate limiter, whose per-call arguments are a
dict (`{"retry": False}` for optional calls); `ContextTypes.DEFAULT_TYPE` would type them as None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import Chat, Message, Update, User
from telegram.constants import ChatType
from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from bot.settings import GroupContext
from bot.turn import ConversationKey
from handlers.texts import language_of

RateLimitArgs = dict[str, Any]
TelegramBot = ExtBot[RateLimitArgs]
SERVICES_KEY = "services"  # where the application keeps the BotServices (handlers/services.py)


def conversation_key(message: Message, user_id: int, mode: GroupContext) -> ConversationKey:
    """The conversation a message from `user_id` continues: per user in private chats; in groups
    as GROUP_CONTEXT says (per member, one per group, or one per forum topic)."""
    chat = message.chat
    if chat.type == ChatType.PRIVATE:
        return ConversationKey(chat.id, user_id)
    thread = message.message_thread_id if message.is_topic_message else None
    if mode is GroupContext.SHARED:
        return ConversationKey(chat.id, None)
    if mode is GroupContext.PER_TOPIC:
        return ConversationKey(chat.id, None, thread)
    return ConversationKey(chat.id, user_id)


@dataclass(frozen=True)
class Incoming:
    """Who and where an update is from (None when it has no sender or chat, e.g. a draft's stop)."""

    sender: User | None
    chat: Chat | None
    thread_id: int | None  # the forum topic, when the message is in one
    language: str  # "zh" for Chinese users, "en" for everyone else
    key: ConversationKey | None = None  # the conversation a message continues (None: no message)

    @classmethod
    def of(cls, update: object, mode: GroupContext | None) -> Incoming:
        if not isinstance(update, Update):
            return cls(None, None, None, language_of(None))
        sender, message = update.effective_user, update.effective_message
        topic = message.message_thread_id if message is not None and message.is_topic_message else None
        language = language_of(sender.language_code if sender else None)
        key = None
        if message is not None and sender is not None and mode is not None:
            key = conversation_key(message, sender.id, mode)
        return cls(sender, update.effective_chat, topic, language, key)

    @property
    def conversation(self) -> ConversationKey:
        """The key, for a handler registered for messages with a sender (which always have one)."""
        if self.key is None:
            raise LookupError("this update continues no conversation")
        return self.key


class BotContext(CallbackContext[TelegramBot, dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    incoming: Incoming = Incoming(None, None, None, "en")  # replaced for every update

    @classmethod
    def from_update(
        cls, update: object, application: Application[Any, Any, Any, Any, Any, Any]
    ) -> BotContext:
        context = super().from_update(update, application)
        services = application.bot_data.get(SERVICES_KEY)
        context.incoming = Incoming.of(update, services.settings.group_context if services else None)
        return context


CONTEXT_TYPES: ContextTypes[BotContext, dict[Any, Any], dict[Any, Any], dict[Any, Any]] = ContextTypes(
    context=BotContext
)
