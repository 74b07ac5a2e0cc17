"""Admins' allow-list commands: /allow <user_id>, /deny <user_id>, /users.

The decision lives in the database (bot.access), so it holds for the next message, without a
restart. A non-admin gets a short refusal and changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from telegram import Update

from bot.pricing import format_points
from handlers.bot_context import BotContext
from handlers.command_arguments import BadArgument, bad_argument_text, parse_user_id
from handlers.long_replies import reply_in_parts
from handlers.services import services
from handlers.texts import language_of, text
from handlers.update_parts import message_of, sender_of
from handlers.usage import admin_guard, budget_use_text, user_name


async def on_allow(update: Update, context: BotContext) -> None:
    await _decide(update, context, allowed=True)


async def on_deny(update: Update, context: BotContext) -> None:
    await _decide(update, context, allowed=False)


async def _decide(update: Update, context: BotContext, allowed: bool) -> None:
    svc = services(context)
    if not await admin_guard(svc, update, private_only=False):
        return
    message, admin = message_of(update), sender_of(update)
    lang = language_of(admin.language_code)
    args = context.args or []
    usage = text(lang, "access_usage", command="allow" if allowed else "deny")
    if len(args) != 1:
        await message.reply_text(usage)
        return
    try:
        user_id = parse_user_id(args[0])
    except BadArgument as error:
        await message.reply_text(f"{bad_argument_text(lang, error)}\n{usage}")
        return
    change = await (svc.access.allow if allowed else svc.access.deny)(user_id, admin.id)
    reply = text(lang, "access_allowed" if allowed else "access_denied", user_id=user_id)
    if change.closed_the_bot:
        reply += text(lang, "access_closed")
    if change.is_admin and not allowed:
        reply += text(lang, "access_admin", user_id=user_id)
    await message.reply_text(reply)


async def on_users(update: Update, context: BotContext) -> None:
    svc = services(context)
    if not await admin_guard(svc, update):
        return
    message = message_of(update)
    lang = context.incoming.language
    listing = await svc.access.listing()
    ids = lambda values: ", ".join(str(value) for value in sorted(values)) or text(lang, "none")  # noqa: E731
    if listing.open_to_everyone:
        lines = [text(lang, "users_open")]
    else:
        lines = [
            text(lang, "users_allowed"),
            text(lang, "users_from_settings", ids=ids(listing.from_settings)),
            text(lang, "users_by_admins", ids=ids(listing.allowed_by_admins)),
        ]
    lines.append(text(lang, "users_denied", ids=ids(listing.denied)))
    lines.append(text(lang, "users_admins", ids=ids(listing.admins)))
    recent = await svc.reports.recent_users()
    if not recent:
        lines.append(text(lang, "users_none_recent"))
    else:
        lines.append(text(lang, "users_recent"))
        for use in recent:
            lines.append(
                text(
                    lang,
                    "users_recent_line",
                    name=user_name(use.spend.user_id, use.spend.username),
                    points=format_points(use.spend.cost_micro),
                    last=_day(use.spend.last_used),
                    budget=budget_use_text(lang, use),
                )
            )
    await reply_in_parts(message, "\n".join(lines))


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"
