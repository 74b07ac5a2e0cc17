"""The one-time budget notices (bot.budget_notices) as lines for a reply's footer."""

from __future__ import annotations

from telegram import User

from bot.budget_notices import BudgetNotice, NoticeKind
from bot.pricing import format_points
from bot.turn import TurnOutcome
from handlers.services import BotServices
from handlers.texts import reset_text, text
from storage import UserRecord


async def budget_notes(
    svc: BotServices, asker: User | None, outcome: TurnOutcome, lang: str, known: UserRecord | None = None
) -> list[str]:
    """`known`: the asker's record as the turn began (saves a read, with the outcome's budget)."""
    if asker is None or outcome.cost_micro <= 0:
        return []  # nothing was charged, so nothing can have crossed a line
    if known is None or known.telegram_id != asker.id:
        known = None  # the outcome's budget is the record's user's: without it, read both
    notices = await svc.notices.after_answer(asker.id, known, outcome.budget if known else None)
    return [notice_text(notice, lang) for notice in notices]


def notice_text(notice: BudgetNotice, lang: str) -> str:
    view = notice.view
    limit = format_points(view.limit_micro or 0)
    if notice.kind is NoticeKind.RENEWED:
        return text(lang, "budget_renewed", limit=limit)
    reset = reset_text(lang, view.period.ends_at)
    return text(
        lang,
        "budget_warning",
        percent=notice.percent,
        spent=format_points(view.spent_micro),
        limit=limit,
        reset=reset,
    )
