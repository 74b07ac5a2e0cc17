"""The bot's commands: /start, /help, /model, /balance, /cost, /reset, /stop and admin /budget."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType

from bot.kimi import KimiError
from bot.pricing import MICRO, ModelPrice, format_points
from handlers.bot_context import BotContext
from handlers.buttons import ChooseModel, ShowCostChart, StopAnswer, decode, encode, fits
from handlers.chat import known_user
from handlers.command_arguments import (
    BadArgument,
    BudgetLimit,
    BudgetWord,
    bad_argument_text,
    excerpt,
    parse_budget_limit,
    parse_user_id,
)
from handlers.long_replies import reply_in_parts
from handlers.services import BotServices, services
from handlers.switches import search_button
from handlers.texts import error_text, text
from handlers.update_parts import chat_of, message_of, sender_of
from handlers.usage import CHART_WORDS, is_private, send_cost_chart
from storage import UserRecord

log = logging.getLogger(__name__)

# (command, English description, Chinese description), registered with setMyCommands.
COMMANDS = (
    ("start", "What this bot does", "机器人简介"),
    ("help", "Commands and how to use the bot", "命令与用法"),
    ("model", "See and switch models", "查看和切换模型"),
    ("balance", "What is left of your budget", "剩余预算"),
    ("cost", "What you spent", "用量与花费"),
    ("export", "Your usage as a CSV file", "导出用量 CSV"),
    ("reset", "Start a new conversation", "开始新对话"),
    ("stop", "Stop the current answer", "停止当前回答"),
    ("summary", "Summarise the document you reply to", "总结所回复的文档"),
    ("search", "Web search on or off", "开关联网搜索"),
    ("think", "Thinking on or off (kimi-k2.6, k2.5)", "开关思考模式（kimi-k2.6、k2.5）"),
)


async def _guarded(update: Update, context: BotContext) -> BotServices | None:
    """The services, for a command with a message (who may use it was checked by handlers.access)."""
    return None if update.effective_message is None else services(context)


async def on_start(update: Update, context: BotContext) -> None:
    svc = await _guarded(update, context)
    if svc is None:
        return
    lang = context.incoming.language
    user = await known_user(svc, sender_of(update))
    view = await svc.budgets.view(user)
    remaining = (
        text(lang, "unlimited") if view.remaining_micro is None else format_points(view.remaining_micro)
    )
    await reply_in_parts(
        message_of(update),
        text(
            lang,
            "start",
            model=svc.conversations.model_for(user).model,
            remaining=remaining,
            commands=_help_commands(svc, update, lang, context),
        ),
    )


async def on_help(update: Update, context: BotContext) -> None:
    await on_start(update, context)


def _help_commands(svc: BotServices, update: Update, lang: str, context: BotContext) -> str:
    body = text(lang, "help_commands")
    if update.effective_chat and update.effective_chat.type != ChatType.PRIVATE:
        body += text(lang, "help_group", bot=context.bot.username)
    if svc.is_admin(sender_of(update).id):
        body += text(lang, "help_admin")
    return body


# --- /model --------------------------------------------------------------------------------------


def _per_million(ratio) -> str:  # noqa: ANN001 - a Fraction
    return format_points(int(MICRO * 1_000_000 / ratio), places=0)


def _model_line(price: ModelPrice, current: str, lang: str) -> str:
    tier = price.tiers[0]
    return text(
        lang,
        "model_line",
        mark="✅" if price.model == current else "▫️",
        model=price.model,
        input=_per_million(tier.input_ratio),
        output=_per_million(tier.output_ratio),
        context=f"{price.context_length // 1024}K",
        derived=text(lang, "model_derived") if price.derived else "",
    )


async def on_model(update: Update, context: BotContext) -> None:
    svc = await _guarded(update, context)
    if svc is None:
        return
    lang = context.incoming.language
    user = await known_user(svc, sender_of(update))
    if context.args:
        await _switch_model(update, svc, user.telegram_id, context.args[0].strip(), lang)
        return
    models = await svc.catalog.available()
    if not models:
        await message_of(update).reply_text(text(lang, "model_none"))
        return
    current = svc.conversations.model_for(user).model
    lines = [text(lang, "model_current", model=current)]
    lines += [_model_line(price, current, lang) for price in models]
    keyboard = [
        [
            InlineKeyboardButton(
                ("✅ " if p.model == current else "") + p.model, callback_data=encode(ChooseModel(p.model))
            )
        ]
        for p in models
        if fits(ChooseModel(p.model))
    ]
    keyboard.append([search_button(lang, user.web_search)])
    await reply_in_parts(message_of(update), "\n".join(lines), reply_markup=InlineKeyboardMarkup(keyboard))


async def _switch_model(update: Update, svc: BotServices, user_id: int, model: str, lang: str) -> bool:
    models = await svc.catalog.available()
    if not any(price.model == model for price in models):
        names = "\n".join(price.model for price in models) or "-"
        await reply_in_parts(
            message_of(update), text(lang, "model_unknown", model=excerpt(model), models=names)
        )
        return False
    await svc.users.choose_model(user_id, model)
    await message_of(update).reply_text(text(lang, "model_switched", model=model))
    return True


async def on_model_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    svc = services(context)
    lang = context.incoming.language
    pressed = decode(query.data) if query is not None else None
    if query is None or not isinstance(pressed, ChooseModel):
        if query is not None:
            await query.answer()
        return
    model = pressed.model
    price = await svc.catalog.find(model)
    if price is None:
        await query.answer(text(lang, "button_expired"), show_alert=True)
        return
    await known_user(svc, query.from_user)
    await svc.users.choose_model(query.from_user.id, model)
    await query.answer(text(lang, "model_switched", model=model))
    if isinstance(query.message, Message):  # not an old message Telegram no longer shows
        await query.message.reply_text(text(lang, "model_switched", model=model))


# --- /balance and /cost --------------------------------------------------------------------------


async def on_balance(update: Update, context: BotContext) -> None:
    svc = await _guarded(update, context)
    if svc is None:
        return
    lang = context.incoming.language
    user = await known_user(svc, sender_of(update))
    view = await svc.budgets.view(user)
    period = text(lang, f"period_{svc.settings.budget_period.value}")
    if view.limit_micro is None:
        reply = text(
            lang,
            "balance_unlimited",
            period=period,
            spent=format_points(view.spent_micro),
            reserved=format_points(view.reserved_micro),
        )
    else:
        reset = (
            text(lang, "reset_never")
            if view.period.ends_at is None
            else f"{view.period.ends_at:%Y-%m-%d %H:%M} UTC"
        )
        reply = text(
            lang,
            "balance",
            period=period,
            remaining=format_points(view.remaining_micro or 0),
            limit=format_points(view.limit_micro),
            spent=format_points(view.spent_micro),
            reserved=format_points(view.reserved_micro),
            reset=reset,
        )
    if svc.is_admin(user.telegram_id):
        # The account's money is the operator's business: never shown where a group can read it.
        if is_private(message_of(update)):
            reply += await _upstream_balance(svc, lang)
        else:
            reply += text(lang, "balance_upstream_private")
    await message_of(update).reply_text(reply)


async def _upstream_balance(svc: BotServices, lang: str) -> str:
    try:
        balance = await svc.admin.kimi_balance()
    except KimiError as error:
        return text(lang, "balance_upstream_unknown", error=error_text(lang, error))
    return text(
        lang,
        "balance_upstream",
        available=balance.available,
        currency=balance.currency or "",
        cash=balance.cash,
        voucher=balance.voucher,
    )


async def on_cost(update: Update, context: BotContext) -> None:
    svc = await _guarded(update, context)
    if svc is None:
        return
    lang = context.incoming.language
    message = message_of(update)
    if context.args and context.args[0].lower() in CHART_WORDS:
        await send_cost_chart(svc, message, sender_of(update))
        return
    user = await known_user(svc, sender_of(update))
    conversation = await svc.history.current(context.incoming.conversation)
    titles = {
        "last": "cost_last",
        "conversation": "cost_conversation",
        "today": "cost_today",
        "period": "cost_period",
        "all": "cost_all",
    }
    lines = [text(lang, "cost_header")]
    for section in await svc.reports.cost(user, conversation.id):
        title = text(lang, titles[section.name])
        if not section.rows:
            lines.append(text(lang, "cost_none", title=title))
            continue
        lines.append(text(lang, "cost_section", title=title, points=format_points(section.cost_micro)))
        for row in section.rows:
            lines.append(
                text(
                    lang,
                    "cost_line",
                    model=row.model,
                    prompt=row.prompt_tokens,
                    cached=row.cached_tokens,
                    completion=row.completion_tokens,
                    # The searches' fees are listed on their own line below.
                    points=format_points(row.cost_micro - row.web_search_cost_micro),
                    calls=row.calls,
                )
            )
        searches = sum(row.web_search_calls for row in section.rows)
        if searches:
            fees = sum(row.web_search_cost_micro for row in section.rows)
            lines.append(text(lang, "cost_search_line", searches=searches, points=format_points(fees)))
    chart = InlineKeyboardButton(text(lang, "cost_chart_button"), callback_data=encode(ShowCostChart()))
    await reply_in_parts(message, "\n".join(lines), reply_markup=InlineKeyboardMarkup([[chart]]))


# --- /reset and /stop ----------------------------------------------------------------------------


async def on_reset(update: Update, context: BotContext) -> None:
    svc = await _guarded(update, context)
    if svc is None:
        return
    await svc.history.start_new(context.incoming.conversation)
    await message_of(update).reply_text(text(context.incoming.language, "reset_done"))


async def on_stop(update: Update, context: BotContext) -> None:
    svc = await _guarded(update, context)
    if svc is None:
        return
    user_id = sender_of(update).id
    chat_id = chat_of(update).id
    if not await svc.active.stop_all_of(chat_id, user_id):
        await message_of(update).reply_text(text(context.incoming.language, "nothing_to_stop"))


async def on_stop_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    pressed = decode(query.data) if query is not None else None
    if query is None or not isinstance(pressed, StopAnswer):
        return
    svc = services(context)
    lang = context.incoming.language
    owner = await svc.active.owner(pressed.token)  # on this replica or another one
    if owner is None:
        await query.answer(text(lang, "button_expired"))  # the answer ended (or the bot restarted)
        return
    if owner[1] != query.from_user.id and not svc.is_admin(query.from_user.id):
        await query.answer()
        return  # only the one who asked (or an admin) may stop an answer
    await svc.active.stop(pressed.token)
    await query.answer(text(lang, "stopping"))


async def on_draft_stopped(update: Update, context: BotContext) -> None:
    """The user pressed Telegram's own stop on a streaming draft (Bot API 10.3)."""
    payload = update.api_kwargs.get("stopped_message_generation")
    if not isinstance(payload, dict):
        return
    chat: dict[str, Any] = payload["chat"] if isinstance(payload.get("chat"), dict) else {}
    chat_id = chat.get("id", payload.get("chat_id"))
    user: dict[str, Any] = payload["from"] if isinstance(payload.get("from"), dict) else {}
    user_id = user.get("id", chat_id)
    if isinstance(chat_id, int) and isinstance(user_id, int):
        await services(context).active.stop_all_of(chat_id, user_id)


# --- admin: /budget ------------------------------------------------------------------------------


async def on_budget(update: Update, context: BotContext) -> None:
    svc = await _guarded(update, context)
    if svc is None:
        return
    lang = context.incoming.language
    message = message_of(update)
    if not svc.is_admin(sender_of(update).id):
        await message.reply_text(text(lang, "admin_only"))
        return
    args = context.args or []
    if not args or len(args) > 2:
        await message.reply_text(text(lang, "budget_usage"))
        return
    # Every argument is read before anything is stored: a bad amount must not create the user.
    try:
        user_id = parse_user_id(args[0])
        limit = parse_budget_limit(args[1]) if len(args) == 2 else None
    except BadArgument as bad:
        await message.reply_text(bad_argument_text(lang, bad) + "\n" + text(lang, "budget_usage"))
        return
    if limit is not None:
        await _set_budget(svc, message, user_id, limit, lang)
        return
    # Only looking: a user who never wrote is shown with the default, and not created.
    target = await svc.users.find(user_id) or _unknown_user(user_id)
    view = await svc.budgets.view(target)
    await message.reply_text(
        text(
            lang,
            "budget_show",
            user_id=target.telegram_id,
            limit=text(lang, "unlimited")
            if view.limit_micro is None
            else f"{format_points(view.limit_micro)} 元点",
            source=text(
                lang,
                "budget_source_default" if target.budget_override_micro is None else "budget_source_override",
            ),
            spent=format_points(view.spent_micro),
            reserved=format_points(view.reserved_micro),
        )
    )


async def _set_budget(
    svc: BotServices, message: Message, user_id: int, limit: BudgetLimit, lang: str
) -> None:
    # Stored as the users table has it: -1 unlimited, None the default, else micro-元点.
    if limit.word is BudgetWord.UNLIMITED:
        override = -1
    elif limit.word is BudgetWord.DEFAULT:
        override = None
    else:
        override = limit.micro
    target = await svc.admin.set_budget_override(user_id, override)
    shown_limit = svc.budgets.limit_for(target)
    shown = text(lang, "unlimited") if shown_limit is None else f"{format_points(shown_limit)} 元点"
    await message.reply_text(text(lang, "budget_set", user_id=user_id, limit=shown))


def _unknown_user(user_id: int) -> UserRecord:
    return UserRecord(
        telegram_id=user_id,
        language=None,
        username=None,
        model=None,
        role="user",
        budget_override_micro=None,
        created_at=datetime.now(UTC),
    )
