"""What was spent, in the shapes the handlers render: /cost, the daily chart, admin reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.budget import BudgetKeeper
from bot.charts import DailyChart, ModelSeries
from bot.periods import start_of_day
from bot.usage_periods import UsagePeriod, days_back
from storage import ChatSpend, LedgerEntry, Store, UsageTotals, UserRecord, UserSpend


@dataclass(frozen=True)
class CostSection:
    name: str  # "last", "conversation", "today", "period", "all"
    rows: list[UsageTotals]

    @property
    def cost_micro(self) -> int:
        return sum(row.cost_micro for row in self.rows)


async def cost_report(
    store: Store, budgets: BudgetKeeper, user: UserRecord, conversation_id: int | None
) -> list[CostSection]:
    period = budgets.period()
    sections = [CostSection("last", await store.last_reply_usage(user.telegram_id))]
    if conversation_id is not None:
        rows = await store.usage_totals(user.telegram_id, conversation_id=conversation_id)
        sections.append(CostSection("conversation", rows))
    sections.append(CostSection("today", await store.usage_totals(user.telegram_id, since=start_of_day())))
    if period.starts_at is not None:
        rows = await store.usage_totals(user.telegram_id, since=period.starts_at)
        sections.append(CostSection("period", rows))
    sections.append(CostSection("all", await store.usage_totals(user.telegram_id)))
    return sections


class Reports:
    """What users are shown about their spending (/cost, the chart, /export) and admins about
    everyone's (/report, /users). user None means everyone: only admins' handlers pass it."""

    def __init__(self, store: Store, budgets: BudgetKeeper) -> None:
        self._store = store
        self._budgets = budgets

    async def cost(self, user: UserRecord, conversation_id: int | None) -> list[CostSection]:
        return await cost_report(self._store, self._budgets, user, conversation_id)

    async def chart(self, user: UserRecord | None) -> DailyChart:
        return await daily_chart(self._store, self._budgets, user)

    async def ledger(self, user_id: int | None, period: UsagePeriod) -> list[LedgerEntry]:
        """The charged calls of the period, oldest first (user_id None: everyone's)."""
        return await self._store.usage_entries(user_id, period.since)

    async def admin(self, period: UsagePeriod) -> AdminReport:
        return await admin_report(self._store, self._budgets, period)

    async def recent_users(self) -> list[BudgetUse]:
        return await recent_users(self._store, self._budgets)


# --- the daily chart -----------------------------------------------------------------------------

CHART_DAYS = 30


async def daily_chart(
    store: Store, budgets: BudgetKeeper, user: UserRecord | None, now: datetime | None = None
) -> DailyChart:
    """The last CHART_DAYS days' spend per day and model: one user's (with their period's budget
    and what they spent in it so far), or everyone's (user None, no budget: each has their own)."""
    start = days_back(CHART_DAYS, now)
    days = tuple(start.date() + timedelta(days=offset) for offset in range(CHART_DAYS))
    index = {day: position for position, day in enumerate(days)}
    user_id = None if user is None else user.telegram_id
    by_model: dict[str, list[int]] = {}
    for row in await store.daily_costs(user_id, start):
        if row.day in index:
            by_model.setdefault(row.model, [0] * CHART_DAYS)[index[row.day]] += row.cost_micro
    series = tuple(
        sorted(
            (ModelSeries(model, tuple(costs)) for model, costs in by_model.items()),
            key=lambda item: (-item.total_micro, item.model),
        )
    )
    limit = None if user is None else budgets.limit_for(user)
    if user is None or limit is None:
        return DailyChart(days, series)
    period = budgets.period(now)
    spent = await _spent_before(store, user.telegram_id, period.starts_at, start)
    first_day = None if period.starts_at is None else period.starts_at.date()
    running: list[int | None] = []
    for position, day in enumerate(days):
        if first_day is not None and day < first_day:
            running.append(None)
            continue
        spent += sum(item.costs_micro[position] for item in series)
        running.append(spent)
    return DailyChart(days, series, limit, tuple(running))


async def _spent_before(
    store: Store, user_id: int, period_start: datetime | None, chart_start: datetime
) -> int:
    """What the period's spending was before the chart's first day (a month can start earlier)."""
    if period_start is not None and period_start >= chart_start:
        return 0
    in_period = await store.usage_totals(user_id, since=period_start)
    in_chart = await store.usage_totals(user_id, since=chart_start)
    return sum(row.cost_micro for row in in_period) - sum(row.cost_micro for row in in_chart)


# --- admin views ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetUse:
    """A user's spending in a report, with their budget this period."""

    spend: UserSpend
    limit_micro: int | None  # None: unlimited
    period_spent_micro: int

    @property
    def percent(self) -> int | None:
        if not self.limit_micro:
            return None
        return self.period_spent_micro * 100 // self.limit_micro


@dataclass(frozen=True)
class AdminReport:
    period: UsagePeriod
    by_model: list[UsageTotals]
    top_users: list[BudgetUse]
    group_chats: list[ChatSpend]

    @property
    def calls(self) -> int:
        return sum(row.calls for row in self.by_model)

    @property
    def tokens(self) -> int:
        return sum(row.prompt_tokens + row.completion_tokens for row in self.by_model)

    @property
    def cost_micro(self) -> int:
        return sum(row.cost_micro for row in self.by_model)


TOP_USERS = 10
RECENT_DAYS = 30


async def admin_report(store: Store, budgets: BudgetKeeper, period: UsagePeriod) -> AdminReport:
    top = await store.spend_by_user(period.since, limit=TOP_USERS)
    return AdminReport(
        period=period,
        by_model=await store.usage_totals_of_everyone(period.since),
        top_users=[await _budget_use(store, budgets, spend) for spend in top],
        group_chats=await store.spend_by_group_chat(period.since),
    )


async def recent_users(store: Store, budgets: BudgetKeeper, limit: int = 50) -> list[BudgetUse]:
    """Who used the bot in the last RECENT_DAYS days, most spent first."""
    spends = await store.spend_by_user(days_back(RECENT_DAYS), limit=limit)
    return [await _budget_use(store, budgets, spend) for spend in spends]


async def _budget_use(store: Store, budgets: BudgetKeeper, spend: UserSpend) -> BudgetUse:
    user = await store.get_user(spend.user_id)
    if user is None:  # ledger rows always have a user; this only guards a hand-edited database
        return BudgetUse(spend, None, 0)
    view = await budgets.view(user)
    return BudgetUse(spend, view.limit_micro, view.spent_micro)
