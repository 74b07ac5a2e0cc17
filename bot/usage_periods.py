"""The period words of /report and /export (day, week, month, all) and when each starts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.periods import current_period
from bot.settings import BudgetPeriod

_KINDS = {"day": BudgetPeriod.DAILY, "week": BudgetPeriod.WEEKLY, "month": BudgetPeriod.MONTHLY}
# Chinese users may type the word in Chinese.
_WORDS = {
    "day": "day",
    "today": "day",
    "日": "day",
    "今天": "day",
    "week": "week",
    "周": "week",
    "本周": "week",
    "month": "month",
    "月": "month",
    "本月": "month",
    "all": "all",
    "全部": "all",
}
PERIOD_WORDS = ("day", "week", "month", "all")


@dataclass(frozen=True)
class UsagePeriod:
    word: str  # day | week | month | all
    since: datetime | None  # None: all time


def default_word(budget_period: BudgetPeriod) -> str:
    """The word matching the budget period, so /export alone gives /cost's "This period"."""
    return {
        BudgetPeriod.DAILY: "day",
        BudgetPeriod.WEEKLY: "week",
        BudgetPeriod.MONTHLY: "month",
    }.get(budget_period, "all")


def parse_period(
    word: str | None, budget_period: BudgetPeriod, now: datetime | None = None
) -> UsagePeriod | None:
    """The period a word names (None: the budget period's); None if the word is not one."""
    key = default_word(budget_period) if word is None else _WORDS.get(word.strip().lower())
    if key is None:
        return None
    if key == "all":
        return UsagePeriod("all", None)
    return UsagePeriod(key, current_period(_KINDS[key], now or datetime.now(UTC)).starts_at)


def days_back(days: int, now: datetime | None = None) -> datetime:
    """Midnight (UTC) starting the last `days` days, today included."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
