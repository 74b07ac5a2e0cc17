"""Budget periods, computed from the clock (UTC) rather than reset by a scheduled job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.settings import BudgetPeriod


@dataclass(frozen=True)
class Period:
    key: str  # what storage keys a budget row by, e.g. "2026-11", "2026-W47"
    starts_at: datetime | None  # None for the never-ending "total" period
    ends_at: datetime | None


def current_period(kind: BudgetPeriod, now: datetime | None = None) -> Period:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind is BudgetPeriod.DAILY:
        return Period(f"{midnight:%Y-%m-%d}", midnight, midnight + timedelta(days=1))
    if kind is BudgetPeriod.WEEKLY:
        monday = midnight - timedelta(days=midnight.weekday())
        year, week, _ = monday.isocalendar()
        return Period(f"{year}-W{week:02d}", monday, monday + timedelta(days=7))
    if kind is BudgetPeriod.MONTHLY:
        first = midnight.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Period(f"{first:%Y-%m}", first, following)
    return Period("total", None, None)


def start_of_day(now: datetime | None = None) -> datetime:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)
