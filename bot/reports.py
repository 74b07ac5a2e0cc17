"""What a user has spent, for /cost, in the shapes the handlers render."""

from __future__ import annotations

from dataclasses import dataclass

from bot.budget import BudgetKeeper
from bot.periods import start_of_day
from storage import Store, UsageTotals, UserRecord


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
    """What users are shown about their spending (/cost)."""

    def __init__(self, store: Store, budgets: BudgetKeeper) -> None:
        self._store = store
        self._budgets = budgets

    async def cost(self, user: UserRecord, conversation_id: int | None) -> list[CostSection]:
        return await cost_report(self._store, self._budgets, user, conversation_id)
