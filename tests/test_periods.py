from datetime import UTC, datetime

from bot.periods import current_period
from bot.settings import BudgetPeriod

NOW = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)  # a Sunday


def test_daily_period():
    period = current_period(BudgetPeriod.DAILY, NOW)
    assert period.key == "2026-11-22"
    assert period.ends_at == datetime(2026, 11, 23, tzinfo=UTC)


def test_weekly_period_starts_monday():
    period = current_period(BudgetPeriod.WEEKLY, NOW)
    assert period.starts_at == datetime(2026, 11, 16, tzinfo=UTC)
    assert period.ends_at == datetime(2026, 11, 23, tzinfo=UTC)
    assert period.key == "2026-W47"


def test_monthly_period_rolls_over_year():
    period = current_period(BudgetPeriod.MONTHLY, datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert period.key == "2026-12"
    assert period.ends_at == datetime(2027, 1, 1, tzinfo=UTC)


def test_total_period_never_ends():
    period = current_period(BudgetPeriod.TOTAL, NOW)
    assert period.key == "total" and period.ends_at is None
