"""The `context` every handler gets: PTB's callback context, plus what the update is about,
resolved once per update (who sent it, in which chat and topic, in which language).

PTB builds one context per update and hands the same one to every handler group (the access check
in group -1 and the handler in group 0), so `context.incoming` is worked out once.

The application is built with the flood guard as its rate limiter, whose per-call arguments are a
dict (`{"retry": False}` for optional calls); `ContextTypes.DEFAULT_TYPE` would type them as None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telegram import Chat, Update, User
from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from handlers.texts import language_of

RateLimitArgs = dict[str, Any]
TelegramBot = ExtBot[RateLimitArgs]


@dataclass(frozen=True)
class Incoming:
    """Who and where an update is from (None when it has no sender or chat, e.g. a draft's stop)."""

    sender: User | None
    chat: Chat | None
    thread_id: int | None  # the forum topic, when the message is in one
    language: str  # "zh" for Chinese users, "en" for everyone else

    @classmethod
    def of(cls, update: object) -> Incoming:
        if not isinstance(update, Update):
            return cls(None, None, None, language_of(None))
        sender, message = update.effective_user, update.effective_message
        topic = message.message_thread_id if message is not None and message.is_topic_message else None
        return cls(
            sender, update.effective_chat, topic, language_of(sender.language_code if sender else None)
        )


class BotContext(CallbackContext[TelegramBot, dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    incoming: Incoming = Incoming(None, None, None, "en")  # replaced for every update

    @classmethod
    def from_update(
        cls, update: object, application: Application[Any, Any, Any, Any, Any, Any]
    ) -> BotContext:
        context = super().from_update(update, application)
        context.incoming = Incoming.of(update)
        return context


CONTEXT_TYPES: ContextTypes[BotContext, dict[Any, Any], dict[Any, Any], dict[Any, Any]] = ContextTypes(
    context=BotContext
)
