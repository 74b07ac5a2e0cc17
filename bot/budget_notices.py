"""One-time budget notices for a reply's footer: past 80 % of the period's budget, and renewed.

A notice is "claimed" with a conditional UPDATE (storage), so two answers finishing together show
it once. users.warned_period remembers the period of the last warning: the warning is shown once
per period, and the renewal notice once when a later period begins for someone who was warned
(someone who never came near their limit needs no news that it reset). Nothing is written unless
a notice is due; an answer whose charge returned the budget (the common case) costs no read at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from bot.budget import BudgetKeeper, BudgetView
from storage import Store, UserRecord

WARN_AT_PERCENT = 80


class NoticeKind(StrEnum):
    WARNING = "warning"  # passed WARN_AT_PERCENT of the period's budget
    RENEWED = "renewed"  # a new period began after a warned one


@dataclass(frozen=True)
class BudgetNotice:
    kind: NoticeKind
    view: BudgetView

    @property
    def percent(self) -> int:
        return self.view.spent_micro * 100 // self.view.limit_micro if self.view.limit_micro else 0


def passed_threshold(view: BudgetView) -> bool:
    limit = view.limit_micro
    return limit is not None and limit > 0 and view.spent_micro * 100 >= WARN_AT_PERCENT * limit


class BudgetNotices:
    def __init__(self, store: Store, budgets: BudgetKeeper) -> None:
        self._store = store
        self._budgets = budgets

    async def after_answer(
        self, user_id: int, known: UserRecord | None = None, budget: BudgetView | None = None
    ) -> list[BudgetNotice]:
        """The notices due now that an answer was charged.

        `known`: the asker as read when the turn began, and `budget`: the budget as the charge
        left it; without them both are read. A concurrent turn may have shown a notice since the
        user was read: the claims below are conditional, so a notice is shown once all the same."""
        user = known if known is not None and budget is not None else await self._store.get_user(user_id)
        if user is None:
            return []
        view = budget if budget is not None else await self._budgets.view(user)
        key = view.period.key
        notices = []
        if user.warned_period not in (None, key) and await self._store.claim_budget_renewal(user_id, key):
            notices.append(BudgetNotice(NoticeKind.RENEWED, view))
            user = _unwarned(user)
        if passed_threshold(view) and user.warned_period != key:
            if await self._store.claim_budget_warning(user_id, key):
                notices.append(BudgetNotice(NoticeKind.WARNING, view))
        return notices


def _unwarned(user: UserRecord) -> UserRecord:
    return replace(user, warned_period=None)
