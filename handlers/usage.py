"""Usage views: the daily chart (/cost chart and its button), /export, and the admins' /report.

The core computes (bot.reports, bot.exports, bot.charts); this module only picks the texts and
sends. A user only ever sees their own usage; everyone's is for admins, in a private chat only,
where no other member of a group can read it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from telegram import Message, Update, User
from telegram.constants import ChatType

from bot.charts import ChartLabels, DailyChart
from bot.exports import ledger_csv
from bot.pricing import format_points
from bot.reports import AdminReport, BudgetUse
from bot.usage_periods import UsagePeriod, parse_period
from handlers.bot_context import BotContext
from handlers.chat import known_user
from handlers.long_replies import reply_in_parts
from handlers.services import BotServices, services
from handlers.texts import language_of, text
from handlers.update_parts import message_of, sender_of

CHART_WORDS = ("chart", "图表", "图")


def _lang(user: User | None) -> str:
    return language_of(user.language_code if user else None)


def chart_labels(lang: str, everyone: bool = False) -> ChartLabels:
    return ChartLabels(
        title=text(lang, "chart_title_all" if everyone else "chart_title"),
        daily_axis=text(lang, "chart_daily_axis"),
        period_axis=text(lang, "chart_period_axis"),
        period_spent=text(lang, "chart_period_spent"),
        budget=text(lang, "chart_budget"),
        no_data=text(lang, "chart_no_data"),
    )


async def render_chart(svc: BotServices, chart: DailyChart, lang: str, everyone: bool = False) -> bytes:
    return await svc.charts.render(chart, chart_labels(lang, everyone), chart_labels("en", everyone))


def period_name(lang: str, period: UsagePeriod) -> str:
    return text(lang, f"period_word_{period.word}")


def is_private(message: Message) -> bool:
    return message.chat.type == ChatType.PRIVATE


# --- the chart -----------------------------------------------------------------------------------


async def send_cost_chart(svc: BotServices, message: Message, sender: User) -> None:
    """The sender's own chart, into the chat of `message` (a command or the /cost reply)."""
    lang = _lang(sender)
    user = await known_user(svc, sender)
    chart = await svc.reports.chart(user)
    caption = text(lang, "chart_caption", total=format_points(chart.total_micro))
    if chart.budget_micro is not None:
        view = await svc.budgets.view(user)
        caption += text(
            lang,
            "chart_caption_budget",
            spent=format_points(view.spent_micro),
            limit=format_points(chart.budget_micro),
        )
    png = await render_chart(svc, chart, lang)
    await message.reply_photo(photo=png, caption=caption)


async def on_chart_button(update: Update, context: BotContext) -> None:
    """The "📈 Chart" button under /cost: whoever presses it gets their own chart."""
    query = update.callback_query
    if query is None:
        return
    svc = services(context)  # the access check (handlers.access) ran before this
    await query.answer()
    if query.message is None:  # too old for Telegram to include: nothing to reply to
        return
    await send_cost_chart(svc, query.message, query.from_user)  # type: ignore[arg-type]


# --- /export -------------------------------------------------------------------------------------


async def on_export(update: Update, context: BotContext) -> None:
    svc = services(context)
    message, sender = message_of(update), sender_of(update)
    lang = _lang(sender)
    admin = svc.is_admin(sender.id)
    everyone, words = _export_scope([arg.lower() for arg in context.args or []], admin)
    if everyone and not admin:
        await message.reply_text(text(lang, "admin_only"))
        return
    if everyone and not is_private(message):
        await message.reply_text(text(lang, "private_only"))
        return
    period = (
        parse_period(words[0] if words else None, svc.settings.budget_period) if len(words) <= 1 else None
    )
    if period is None:
        await message.reply_text(text(lang, "export_usage_admin" if admin else "export_usage"))
        return
    if not everyone:
        await known_user(svc, sender)
    entries = await svc.reports.ledger(None if everyone else sender.id, period)
    name = period_name(lang, period)
    if not entries:
        await message.reply_text(text(lang, "export_empty", period=name))
        return
    total = format_points(sum(entry.cost_micro for entry in entries))
    stamp = f"{datetime.now(UTC):%Y%m%d-%H%M}"
    whose = "all" if everyone else str(sender.id)
    await message.reply_document(
        document=ledger_csv(entries),
        filename=f"kimi-usage-{whose}-{period.word}-{stamp}.csv",
        caption=text(
            lang,
            "export_caption_all" if everyone else "export_caption",
            period=name,
            rows=len(entries),
            total=total,
        ),
    )


def _export_scope(args: list[str], admin: bool) -> tuple[bool, list[str]]:
    """(everyone's ledger?, the period words left). "/export all week" is everyone's this week;
    "/export all" alone is everyone's for an admin and the caller's own, all time, for anyone
    else (for them "all" can only be the period word)."""
    if args[:1] in (["all"], ["全部"]) and (len(args) >= 2 or admin):
        return True, args[1:]
    return False, args


# --- /report (admins) ----------------------------------------------------------------------------


async def admin_guard(svc: BotServices, update: Update, private_only: bool = True) -> bool:
    """True if the sender is an admin (in a private chat, when it shows others' data); otherwise
    says why not, briefly."""
    message, sender = message_of(update), sender_of(update)
    lang = _lang(sender)
    if not svc.is_admin(sender.id):
        await message.reply_text(text(lang, "admin_only"))
        return False
    if private_only and not is_private(message):
        await message.reply_text(text(lang, "private_only"))
        return False
    return True


async def on_report(update: Update, context: BotContext) -> None:
    svc = services(context)
    if not await admin_guard(svc, update):
        return
    message, lang = message_of(update), _lang(update.effective_user)
    args = context.args or []
    period = parse_period(args[0] if args else None, svc.settings.budget_period) if len(args) <= 1 else None
    if period is None:
        await message.reply_text(text(lang, "report_usage"))
        return
    report = await svc.reports.admin(period)
    await reply_in_parts(message, report_text(report, lang))
    chart = await svc.reports.chart(None)
    png = await render_chart(svc, chart, lang, everyone=True)
    await message.reply_photo(
        photo=png, caption=text(lang, "chart_caption_all", total=format_points(chart.total_micro))
    )


def user_name(user_id: int, username: str | None) -> str:
    return f"@{username} ({user_id})" if username else str(user_id)


def budget_use_text(lang: str, use: BudgetUse) -> str:
    spent = format_points(use.period_spent_micro)
    if use.limit_micro is None:
        return text(lang, "budget_use_unlimited", spent=spent)
    return text(
        lang, "budget_use", spent=spent, limit=format_points(use.limit_micro), percent=use.percent or 0
    )


def report_text(report: AdminReport, lang: str) -> str:
    name = period_name(lang, report.period)
    lines = [text(lang, "report_header", period=name)]
    if not report.by_model:
        lines.append(text(lang, "report_nothing", period=name))
        return "\n".join(lines)
    lines.append(text(lang, "report_models"))
    for row in report.by_model:
        lines.append(
            text(
                lang,
                "report_model_line",
                model=row.model,
                calls=row.calls,
                prompt=row.prompt_tokens,
                cached=row.cached_tokens,
                completion=row.completion_tokens,
                points=format_points(row.cost_micro),
            )
        )
    lines.append(
        text(
            lang,
            "report_total",
            calls=report.calls,
            tokens=report.tokens,
            points=format_points(report.cost_micro),
        )
    )
    lines.append(text(lang, "report_users"))
    for rank, use in enumerate(report.top_users, start=1):
        lines.append(
            text(
                lang,
                "report_user_line",
                rank=rank,
                name=user_name(use.spend.user_id, use.spend.username),
                points=format_points(use.spend.cost_micro),
                budget=budget_use_text(lang, use),
            )
        )
    if report.group_chats:
        lines.append(text(lang, "report_groups"))
        for chat in report.group_chats:
            lines.append(
                text(
                    lang,
                    "report_group_line",
                    chat_id=chat.chat_id,
                    calls=chat.calls,
                    tokens=chat.tokens,
                    points=format_points(chat.cost_micro),
                )
            )
    return "\n".join(lines)
