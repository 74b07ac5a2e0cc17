"""/think and /search: a user's switches for thinking and web search, and the search button of
/model's keyboard. Both are kept per user in the database."""

from __future__ import annotations

from telegram import InlineKeyboardButton, Message, Update

from bot.pricing import format_points
from handlers.bot_context import BotContext
from handlers.buttons import ToggleSearch, encode
from handlers.chat import known_user
from handlers.services import BotServices, services
from handlers.texts import text
from handlers.update_parts import message_of, sender_of
from storage import UserRecord

_ON = ("on", "开", "开启", "打开", "1", "true", "yes")
_OFF = ("off", "关", "关闭", "0", "false", "no")


def _choice(args: list[str] | None) -> bool | None | str:
    """True/False for on/off, None when no argument, "" when unreadable."""
    if not args:
        return None
    if len(args) == 1 and args[0].lower() in _ON:
        return True
    if len(args) == 1 and args[0].lower() in _OFF:
        return False
    return ""


def _state(lang: str, on: bool) -> str:
    return text(lang, "state_on" if on else "state_off")


async def _start(update: Update, context: BotContext) -> BotServices | None:
    svc = services(context)
    # Who may use the bot is checked before any handler runs (handlers/access.py).
    if update.effective_message is None or update.effective_user is None:
        return None
    return svc


async def on_think(update: Update, context: BotContext) -> None:
    svc = await _start(update, context)
    if svc is None:
        return
    lang = context.incoming.language
    user = await known_user(svc, sender_of(update))
    price = svc.conversations.model_for(user)
    choice = _choice(context.args)
    if not price.thinking_switch:
        mode = text(lang, "think_mode_always" if price.reasoning else "think_mode_never")
        await message_of(update).reply_text(text(lang, "think_not_applicable", model=price.model, mode=mode))
        return
    if not isinstance(choice, bool):
        await message_of(update).reply_text(text(lang, "think_usage", state=_state(lang, user.thinking)))
        return
    await svc.users.switch(user.telegram_id, thinking=choice)
    effect = text(lang, "think_effect_on" if choice else "think_effect_off")
    reply = text(lang, "think_set", state=_state(lang, choice), model=price.model, effect=effect)
    if choice and user.web_search:
        reply += text(lang, "search_thinking_note", model=price.model)
    await message_of(update).reply_text(reply)


async def on_search(update: Update, context: BotContext) -> None:
    svc = await _start(update, context)
    if svc is None:
        return
    lang = context.incoming.language
    user = await known_user(svc, sender_of(update))
    choice = _choice(context.args)
    fee = format_points(svc.prices.web_search_fee_micro)
    if not isinstance(choice, bool):
        await message_of(update).reply_text(
            text(lang, "search_usage", state=_state(lang, user.web_search), fee=fee)
        )
        return
    await svc.users.switch(user.telegram_id, web_search=choice)
    await message_of(update).reply_text(_search_set_text(svc, user, choice, lang))


def _search_set_text(svc: BotServices, user: UserRecord, on: bool, lang: str) -> str:
    reply = text(lang, "search_set", state=_state(lang, on))
    if on:
        reply += text(lang, "search_set_on_detail", fee=format_points(svc.prices.web_search_fee_micro))
        price = svc.conversations.model_for(user)
        if price.thinking_switch and user.thinking:
            reply += text(lang, "search_thinking_note", model=price.model)
    return reply


def search_button(lang: str, on: bool) -> InlineKeyboardButton:
    """The toggle row under /model's list of models."""
    return InlineKeyboardButton(
        text(lang, "search_button", state=_state(lang, on)), callback_data=encode(ToggleSearch())
    )


async def on_search_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    if query is None:
        return
    svc = services(context)
    lang = context.incoming.language
    user = await known_user(svc, query.from_user)
    on = not user.web_search
    await svc.users.switch(user.telegram_id, web_search=on)
    await query.answer(text(lang, "search_set", state=_state(lang, on)))
    if isinstance(query.message, Message):  # not an old message Telegram no longer shows
        await query.message.reply_text(_search_set_text(svc, user, on, lang))
